use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = refunds_server::cli::Cli::parse();
    refunds_server::telemetry::init_logs(cli.log_format);
    match refunds_server::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
