//! One module per subcommand.

pub mod output;

pub mod config_args;
pub mod decode;
#[cfg(feature = "demo")]
pub mod demo;
pub mod devices;
pub mod fhir;
pub mod link_mes;
pub mod listen;
pub mod members;
pub mod pair;
pub mod password;
pub mod progress;
pub mod readings;
pub mod run;
pub mod scan;
pub mod settings;
pub mod status;
