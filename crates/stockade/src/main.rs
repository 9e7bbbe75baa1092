fn main() -> std::process::ExitCode {
    stockade::main()
}
