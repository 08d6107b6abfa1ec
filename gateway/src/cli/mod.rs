//! One module per subcommand.

pub mod output;

pub mod config_args;
pub mod decode;
pub mod fhir;
pub mod link_mes;
pub mod listen;
pub mod members;
pub mod pair;
pub mod progress;
pub mod readings;
pub mod run;
pub mod scan;
pub mod status;
