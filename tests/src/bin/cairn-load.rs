//! `cairn-load`: the load generator (see `cairn_tests::load`; `cairn-load --help` for usage).
//! Exits 0 after a run that got answers, 1 when nothing was answered, 2 on a bad command line.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;

use cairn_tests::load::cli::Cli;

fn main() -> ExitCode {
    let (config, output) = match Cli::parse().into_config() {
        Ok(parsed) => parsed,
        Err(error) => {
            eprintln!("cairn-load: {error}");
            return ExitCode::from(2);
        }
    };
    let runtime = match cairn_tests::runtime(output.threads) {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cairn-load: starting the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let report = match runtime.block_on(cairn_tests::load::run(config)) {
        Ok(report) => report,
        Err(error) => {
            eprintln!("cairn-load: {error}");
            return ExitCode::FAILURE;
        }
    };
    if output.json {
        match serde_json::to_string_pretty(&report) {
            Ok(json) => println!("{json}"),
            Err(error) => {
                eprintln!("cairn-load: writing the report: {error}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        print!("{report}");
    }
    if report.requests == 0 {
        eprintln!("cairn-load: no request was answered");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
