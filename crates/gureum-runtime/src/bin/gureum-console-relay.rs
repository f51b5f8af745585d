//! The console relay process (see `gureum_runtime`'s console module): allocates the pty that
//! becomes an instance's /dev/console and appends its output to the console log.

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    std::process::exit(gureum_runtime::console_relay_main(&args));
}
