//! The `infinisheet` command: sheets in a catalog on any storage, edited,
//! read, imported and exported from the shell; snapshot workers as their
//! own processes; a demo.

mod cli;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Event-sourced spreadsheets on pluggable storage.
///
/// Sheets live in a catalog: folders and sheets in a blob store, each
/// sheet's edits in its own event log. By default both are in one local
/// directory (`--home`, else $INFINISHEET_HOME, else ~/.infinisheet): a
/// SQLite file of logs and a folder tree of files. `--logs` and `--blobs`
/// take storage URLs instead: memory:, sqlite:PATH, file:DIR,
/// s3://bucket/prefix (with the AWS_* environment).
#[derive(Debug, Parser)]
#[command(name = "infinisheet", version, about, long_about)]
struct Cli {
    /// The directory of the embedded storage.
    #[arg(long, global = true, env = "INFINISHEET_HOME")]
    home: Option<PathBuf>,
    /// Where the sheets' logs live (a storage URL); needs --blobs.
    #[arg(long, global = true, env = "INFINISHEET_LOGS", requires = "blobs")]
    logs: Option<String>,
    /// Where the folder tree and the sheets' snapshots live (a storage
    /// URL); needs --logs.
    #[arg(long, global = true, env = "INFINISHEET_BLOBS", requires = "logs")]
    blobs: Option<String>,
    /// Say more about what happens (-v: warnings, -vv: progress, -vvv: debug);
    /// `RUST_LOG` sets it in detail.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Say nothing but errors (no progress, no notes).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

/// Diagnostics on stderr: `RUST_LOG` if set, else errors (none with `-q`,
/// warnings with `-v`, more with each further `-v`).
fn start_logging(verbose: u8, quiet: bool) {
    use tracing_subscriber::EnvFilter;
    // The command says what matters itself; the library's warnings (a
    // retried request, a job left pending) show with -v.
    let level = match (quiet, verbose) {
        (true, _) => "off",
        (false, 0) => "error",
        (false, 1) => "warn",
        (false, 2) => "info",
        (false, _) => "debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time()
        .try_init();
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a sheet (or with --folder, a folder), and the folders above it.
    New(cli::catalog::New),
    /// List a folder's sheets and folders.
    Ls(cli::catalog::Ls),
    /// Move or rename a sheet or folder.
    Mv(cli::catalog::Mv),
    /// Remove a sheet (and its log's entries) or a folder.
    Rm(cli::catalog::Rm),
    /// Show a sheet's log, snapshots, size and backends.
    Info(cli::catalog::Info),
    /// Verify sheets end to end: the log, every snapshot it names, the
    /// history; exit 1 if any is damaged.
    Check(cli::catalog::Check),
    /// Rebuild the snapshots of sheets that are missing or damaged, from
    /// their logs and history; exit 1 if anything is left unrepaired.
    Repair(cli::catalog::Repair),
    /// Set a cell: a number, TRUE/FALSE, an error value such as #N/A, or text.
    Set(cli::cells::Set),
    /// Make a range of a sheet blank, as if never set.
    Clear(cli::cells::Clear),
    /// Print a range of cells as a table (or JSON).
    Get(cli::cells::Get),
    /// Import a CSV file into a sheet.
    Import(cli::cells::Import),
    /// Export a sheet (or a range of it) as CSV.
    Export(cli::cells::Export),
    /// List a sheet's log entries and their metadata.
    Log(cli::cells::Log),
    /// Ask for a snapshot of a sheet now (and write it, unless --no-wait).
    Snapshot(cli::cells::Snapshot),
    /// Run a polling snapshot worker for the catalog's sheets.
    Worker(cli::worker::Worker),
    /// Build a sheet of a few hundred thousand cells with snapshots on the
    /// default storage, reopen it cold, and print a viewport and timings.
    Demo(cli::demo::Demo),
    /// Print a shell's completion script: `infinisheet completions bash >
    /// ~/.local/share/bash-completion/completions/infinisheet`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff): `infinisheet man | man -l -`.
    Man,
}

fn main() -> ExitCode {
    // An internal error is one line too, never a backtrace.
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(ToString::to_string)
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        eprintln!("error: internal error: {message}");
    }));
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(err) => err.exit(),
    };
    let cli = match choose_storage(cli, &matches) {
        Ok(cli) => cli,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    start_logging(cli.verbose, cli.quiet);
    cli::set_quiet(cli.quiet);
    match &cli.command {
        Command::Completions { shell } => {
            let mut command = Cli::command();
            clap_complete::generate(*shell, &mut command, "infinisheet", &mut std::io::stdout());
            return ExitCode::SUCCESS;
        }
        Command::Man => {
            let page = clap_mangen::Man::new(Cli::command());
            return match page.render(&mut std::io::stdout()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
                Err(err) => {
                    eprintln!("error: writing the manual page: {err}");
                    ExitCode::FAILURE
                }
            };
        }
        _ => {}
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        // A reader that stopped reading (`| head`) ends the command quietly.
        Err(err) if cli::is_closed_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", cli::one_line(&err));
            ExitCode::FAILURE
        }
    }
}

/// The embedded storage (`--home`) or URLs (`--logs`, `--blobs`), never
/// both: the command line wins over the environment, and both given at the
/// same level is an error (it was `--home` silently ignored).
fn choose_storage(mut cli: Cli, matches: &clap::ArgMatches) -> Result<Cli, String> {
    use clap::parser::ValueSource;
    let from = |id: &str| matches.value_source(id);
    let (home, urls) = (from("home"), from("logs").or(from("blobs")));
    match (home, urls) {
        (Some(ValueSource::CommandLine), Some(ValueSource::CommandLine)) => {
            Err("--home names the embedded storage and --logs/--blobs other storage: give one or the other".into())
        }
        (Some(ValueSource::EnvVariable), Some(ValueSource::EnvVariable)) => Err(
            "INFINISHEET_HOME and INFINISHEET_LOGS/INFINISHEET_BLOBS are both set: unset one (or give --home or --logs/--blobs)".into(),
        ),
        (Some(ValueSource::CommandLine), Some(_)) => {
            (cli.logs, cli.blobs) = (None, None);
            Ok(cli)
        }
        (Some(_), Some(ValueSource::CommandLine)) => {
            cli.home = None;
            Ok(cli)
        }
        _ => Ok(cli),
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let place = cli::Place {
        home: cli.home,
        logs: cli.logs,
        blobs: cli.blobs,
    };
    match cli.command {
        Command::New(args) => cli::catalog::new(&place, args).await,
        Command::Ls(args) => cli::catalog::ls(&place, args).await,
        Command::Mv(args) => cli::catalog::mv(&place, args).await,
        Command::Rm(args) => cli::catalog::rm(&place, args).await,
        Command::Info(args) => cli::catalog::info(&place, args).await,
        Command::Check(args) => cli::catalog::check(&place, args).await,
        Command::Repair(args) => cli::catalog::repair(&place, args).await,
        Command::Set(args) => cli::cells::set(&place, args).await,
        Command::Clear(args) => cli::cells::clear(&place, args).await,
        Command::Get(args) => cli::cells::get(&place, args).await,
        Command::Import(args) => cli::cells::import(&place, args).await,
        Command::Export(args) => cli::cells::export(&place, args).await,
        Command::Log(args) => cli::cells::log(&place, args).await,
        Command::Snapshot(args) => cli::cells::snapshot(&place, args).await,
        Command::Worker(args) => cli::worker::run(&place, args).await,
        Command::Demo(args) => cli::demo::run(args).await,
        Command::Completions { .. } | Command::Man => Ok(()),
    }
}
