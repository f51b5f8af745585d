//! The mount interception daemon (see `gureum_runtime`'s mountd module): lets container
//! instances mount their attached EBS volumes without CAP_SYS_ADMIN.

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    std::process::exit(gureum_runtime::mountd_main(&args));
}
