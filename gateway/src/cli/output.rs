//! Standard output for the subcommands. `println!` panics when the reader has gone (`relais
//! decode ... | head`); a command-line tool should then stop quietly, as Unix tools do.

use std::fmt;
use std::io::{self, Write};

/// Writes one line to standard output. When the reader has closed the pipe, the process ends
/// with success: nobody is left to read the rest.
pub fn line(text: fmt::Arguments<'_>) {
    let mut stdout = io::stdout().lock();
    let written = stdout
        .write_fmt(text)
        .and_then(|()| stdout.write_all(b"\n"))
        .and_then(|()| stdout.flush());
    if let Err(e) = written {
        if e.kind() == io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to standard output: {e}");
        std::process::exit(1);
    }
}

/// `println!` for the subcommands: see [`line`].
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::output::line(format_args!($($arg)*))
    };
}

pub(crate) use out;
