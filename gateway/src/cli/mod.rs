//! One module per subcommand.

pub mod output;

pub mod decode;
pub mod fhir;
pub mod listen;
pub mod pair;
pub mod scan;
