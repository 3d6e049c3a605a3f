//! The native runtime's preamble as a program of its own, for programs that
//! embed `gantry-native` without handing `__oci-start` to it in their own
//! `main` (this crate's tests do): set `NativeOptions::preamble` to it.
//! `gantry-oci-start [__oci-start] ARGS...` is `gantry __oci-start ARGS...`.

fn main() {
    let mut args = std::env::args_os().skip(1).peekable();
    if args
        .peek()
        .is_some_and(|arg| arg == gantry_native::preamble::ARG)
    {
        args.next();
    }
    std::process::exit(gantry_native::preamble::main(args));
}
