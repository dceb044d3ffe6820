//! The `portcullis` command: parse flags ([`cli`]) and dispatch to the library — `serve`
//! ([`Server`]), `demo`, `validate`, `check` ([`explain`]), `test` ([`suite`]). Nothing
//! else lives here.

mod cli;

use std::process::ExitCode;

use clap::Parser;
use cli::{Cli, Command, Output, credentials};
use portcullis::{
    config::{Config, TlsFiles},
    demo, explain,
    server::{Server, Watch, shutdown_signal},
    state::AppState,
    suite, telemetry,
};

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::ConfigSchema { policy_file } = &cli.command {
        print!("{}", Config::json_schema(*policy_file));
        return ExitCode::SUCCESS;
    }
    if let Command::Readings = &cli.command {
        print!("{}", portcullis::upstream::markdown_table());
        return ExitCode::SUCCESS;
    }
    if let Command::Validate {
        config,
        policy_dir,
        files,
    } = &cli.command
    {
        let mut reports = Vec::new();
        if let Some(config) = config {
            match Config::load_with_sets(config, policy_dir.as_deref(), &[]) {
                Ok(loaded) => {
                    println!("{}: valid", config.display());
                    reports = loaded.policy_files;
                }
                Err(error) => {
                    eprintln!("{error}");
                    return ExitCode::FAILURE;
                }
            }
        }
        reports.extend(portcullis::config::sets::check_paths(files));
        let mut valid = true;
        for report in reports {
            match report.problem {
                None => println!("{}: valid", report.path.display()),
                Some(problem) => {
                    valid = false;
                    eprintln!("{problem}");
                }
            }
        }
        return if valid {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let _telemetry = telemetry::init(
            cli.log_format,
            // The offline commands print reports on stdout: only warnings on stderr.
            cli.log_level.as_deref().or(match cli.command {
                Command::Check { .. } | Command::Test { .. } => Some("warn"),
                _ => None,
            }),
            cli.otlp_endpoint.as_deref(),
        )?;
        telemetry::set_allow_log_sample(cli.allow_log_sample);
        match cli.command {
            Command::Serve {
                config,
                policy_dir,
                grpc_listen,
                admin_listen,
                grpc_socket,
                http_listen,
                http_dialect,
                tls_cert,
                tls_key,
                tls_client_ca,
                reload_interval,
            } => {
                let mut loaded = Config::load_with_sets(&config, policy_dir.as_deref(), &[])?;
                let listen_in_file = (loaded.grpc_listen, loaded.admin_listen);
                loaded.grpc_listen = grpc_listen.unwrap_or(loaded.grpc_listen);
                loaded.admin_listen = admin_listen.unwrap_or(loaded.admin_listen);
                loaded.grpc_socket = grpc_socket.or(loaded.grpc_socket);
                loaded.http_listen = http_listen.or(loaded.http_listen);
                loaded.http_dialect = http_dialect.unwrap_or(loaded.http_dialect);
                let tls = tls_cert.zip(tls_key).map(|(cert_file, key_file)| TlsFiles {
                    cert_file,
                    key_file,
                    client_ca_file: tls_client_ca,
                });
                loaded.tls = tls.or(loaded.tls);
                let watch = Watch {
                    path: config,
                    policy_dir,
                    interval: reload_interval,
                    listen_in_file,
                };
                let server = Server::start(loaded, Some(watch)).await?;
                server.run_until(shutdown_signal()).await?;
                Ok(ExitCode::SUCCESS)
            }
            Command::Check {
                config,
                policy_dir,
                method,
                path,
                host,
                token,
                no_verify,
                claims,
                output,
            } => {
                let credentials = credentials(token, no_verify, claims)?;
                let request = explain::Request {
                    method: &method,
                    host: &host,
                    path: &path,
                };
                let config = Config::load_with_sets(&config, policy_dir.as_deref(), &[])?;
                let state = AppState::offline(&config)?;
                let report = explain::explain(&state.engine(), &request, credentials).await;
                match output {
                    Output::Text => print!("{}", report.text),
                    Output::Json => println!("{:#}", report.json),
                }
                Ok(if report.allowed {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(3)
                })
            }
            Command::Test {
                config,
                policy_dir,
                suites,
                output,
                junit,
            } => {
                let config = Config::load_with_sets(&config, policy_dir.as_deref(), &[])?;
                let outcome = suite::run(&config, &suites).await?;
                match output {
                    Output::Text => print!("{}", suite::report::text(&outcome)),
                    Output::Json => println!("{}", suite::report::json(&outcome)),
                }
                if let Some(path) = junit {
                    std::fs::write(&path, suite::report::junit(&outcome))?;
                }
                Ok(if outcome.passed() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                })
            }
            Command::Demo {
                grpc_listen,
                admin_listen,
                issuer_port,
                envoy_url,
            } => {
                demo::run(grpc_listen, admin_listen, issuer_port, envoy_url.as_deref()).await?;
                Ok(ExitCode::SUCCESS)
            }
            Command::Validate { .. } | Command::ConfigSchema { .. } | Command::Readings => {
                Ok(ExitCode::SUCCESS)
            }
        }
    });
    match result {
        Ok(code) => code,
        Err(error) => {
            let error: anyhow::Error = error;
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
