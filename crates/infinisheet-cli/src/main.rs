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
/// s3://bucket/prefix (with the AWS_* environment), gs://, az://,
/// http://HOST:PORT for the storage of an `infinisheet serve` (with
/// $INFINISHEET_TOKEN if it has a token), or for logs only
/// postgres://USER@HOST/DB (password from the URL, $PGPASSWORD or
/// ~/.pgpass).
#[derive(Debug, Parser)]
#[command(name = "infinisheet", version, about, long_about, after_help = EXAMPLES)]
struct Cli {
    /// The directory of the embedded storage [default: ~/.infinisheet].
    #[arg(
        long,
        global = true,
        env = "INFINISHEET_HOME",
        value_name = "DIR",
        help_heading = "Storage"
    )]
    home: Option<PathBuf>,
    /// Where the sheets' logs live (a storage URL); needs --blobs.
    #[arg(
        long,
        global = true,
        env = "INFINISHEET_LOGS",
        // A URL may hold a password: --help shows none.
        hide_env_values = true,
        value_name = "URL",
        help_heading = "Storage"
    )]
    logs: Option<String>,
    /// Where the folder tree and the sheets' snapshots live (a storage
    /// URL); needs --logs.
    #[arg(
        long,
        global = true,
        env = "INFINISHEET_BLOBS",
        // A URL may hold a password: --help shows none.
        hide_env_values = true,
        value_name = "URL",
        help_heading = "Storage"
    )]
    blobs: Option<String>,
    /// Say more about what happens (-v: warnings, -vv: progress, -vvv: debug);
    /// `RUST_LOG` sets it in detail.
    #[arg(short, long, global = true, action = clap::ArgAction::Count, help_heading = "Messages")]
    verbose: u8,
    /// Print only errors and what the command was asked for: no progress,
    /// notes or lines saying what was done ("created sheet …").
    #[arg(
        short,
        long,
        global = true,
        conflicts_with = "verbose",
        help_heading = "Messages"
    )]
    quiet: bool,
    /// How diagnostics (and `serve`'s access log) are written on stderr:
    /// lines of text, or one JSON object per line for a log shipper.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value_t = LogFormat::Text,
        help_heading = "Messages"
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

/// The examples under `infinisheet --help`.
const EXAMPLES: &str = "Examples:
  infinisheet new budget/2026
  infinisheet set budget/2026 A1 42 --format 0.00
  infinisheet get budget/2026 A1:F20
  infinisheet import budget/2026 data.csv
  infinisheet --logs sqlite:logs.db --blobs s3://bucket/sheets ls
  infinisheet --logs http://host:8080 --blobs http://host:8080 get budget/2026 A1
  infinisheet demo --dir ./demo-storage

Each command has its own examples: infinisheet help COMMAND.";

/// How diagnostics are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    /// A line of text each.
    Text,
    /// A JSON object per line.
    Json,
}

/// The manual page: clap_mangen's sections, but the commands listed by
/// name with what each does and its usage, in this one page (its own
/// list names an `infinisheet-new(1)` page per command, which no one
/// installs).
fn manual_page(out: &mut dyn std::io::Write) -> std::io::Result<()> {
    let mut command = Cli::command();
    let page = clap_mangen::Man::new(command.clone());
    // Built, so each command's usage names it `infinisheet CMD`.
    command.build();
    page.render_title(out)?;
    page.render_name_section(out)?;
    page.render_synopsis_section(out)?;
    page.render_description_section(out)?;
    page.render_options_section(out)?;
    writeln!(out, ".SH COMMANDS")?;
    for cmd in command.get_subcommands().filter(|c| !c.is_hide_set()) {
        writeln!(out, ".TP")?;
        writeln!(out, "\\fBinfinisheet {}\\fR", roff_text(cmd.get_name()))?;
        if let Some(about) = cmd.get_about() {
            for line in about.to_string().lines() {
                writeln!(out, "{}", roff_text(line))?;
            }
        }
        let usage = cmd.clone().render_usage().to_string();
        let usage = usage.trim_start_matches("Usage: ");
        writeln!(out, ".br")?;
        writeln!(out, "{}", roff_text(usage))?;
    }
    writeln!(
        out,
        ".PP\n\\fBinfinisheet help\\fR \\fICOMMAND\\fR gives a command's options and examples."
    )?;
    if command.get_after_help().is_some() || command.get_after_long_help().is_some() {
        page.render_extra_section(out)?;
    }
    if command.get_version().is_some() || command.get_long_version().is_some() {
        page.render_version_section(out)?;
    }
    Ok(())
}

/// `text` as a line of roff: backslashes doubled, and a line that would
/// start with a control character (`.` or `'`) guarded.
fn roff_text(text: &str) -> String {
    let escaped = text.replace('\\', "\\\\");
    if escaped.starts_with(['.', '\'']) {
        format!("\\&{escaped}")
    } else {
        escaped
    }
}

/// Diagnostics on stderr: `RUST_LOG` if set, else errors (none with `-q`,
/// warnings with `-v`, more with each further `-v`); a server's access
/// log shows unless `-q` says otherwise.
fn start_logging(verbose: u8, quiet: bool, serving: bool, format: LogFormat) {
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
    let mut level = level.to_owned();
    if serving && !quiet && verbose < 2 {
        level.push_str(",infinisheet::access=info");
    }
    if format == LogFormat::Json && !quiet && verbose < 2 {
        // Notes go through the log too, so the log is JSON alone.
        level.push_str(",infinisheet::note=info");
    }
    if verbose < 2 {
        // It logs the failure it returns, which the command says itself.
        level.push_str(",rustls_platform_verifier=off");
    }
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = match format {
        // A server's lines are read later: they carry their time.
        LogFormat::Text if serving => builder.try_init(),
        LogFormat::Text => builder.without_time().try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a sheet (or with --folder, a folder), and the folders above it.
    #[command(
        after_help = "Examples:\n  infinisheet new budget/2026\n  infinisheet new reports --folder\n  infinisheet new big --tiles 1000x50 --snapshot-interval 1000"
    )]
    New(cli::catalog::New),
    /// List a folder's sheets and folders.
    #[command(after_help = "Examples:\n  infinisheet ls\n  infinisheet ls budget")]
    Ls(cli::catalog::Ls),
    /// Move or rename a sheet or folder.
    #[command(
        after_help = "Examples:\n  infinisheet mv budget/2026 budget/2026-final\n  infinisheet mv budget/2026 archive/     # into the folder archive"
    )]
    Mv(cli::catalog::Mv),
    /// Remove a sheet (and its log's entries) or a folder.
    #[command(after_help = "Examples:\n  infinisheet rm budget/2026\n  infinisheet rm -r archive")]
    Rm(cli::catalog::Rm),
    /// Show a sheet's log, snapshots, size and backends.
    #[command(
        after_help = "Examples:\n  infinisheet info budget/2026\n  infinisheet info budget/2026 --json"
    )]
    Info(cli::catalog::Info),
    /// Verify sheets end to end: the log, every snapshot it names, the
    /// history; exit 1 if any is damaged.
    #[command(
        after_help = "Examples:\n  infinisheet check                # every sheet\n  infinisheet check budget/2026"
    )]
    Check(cli::catalog::Check),
    /// Rebuild the snapshots of sheets that are missing or damaged, from
    /// their logs and history; exit 1 if anything is left unrepaired.
    #[command(after_help = "Examples:\n  infinisheet repair budget/2026")]
    Repair(cli::catalog::Repair),
    /// Set a cell: a number, TRUE/FALSE, an error value such as #N/A, or text.
    #[command(
        after_help = "Examples:\n  infinisheet set budget/2026 A1 42 --format 0.00\n  infinisheet set budget/2026 B2 \"Q3 revenue\"\n  infinisheet set budget/2026 C2 \"'007\"      # text, as typed"
    )]
    Set(cli::cells::Set),
    /// Make a range of a sheet blank, as if never set.
    #[command(
        after_help = "Examples:\n  infinisheet clear budget/2026 B2:D40\n  infinisheet clear budget/2026 C:C\n  infinisheet clear budget/2026 all"
    )]
    Clear(cli::cells::Clear),
    /// Print a range of cells as a table (or JSON).
    #[command(
        after_help = "Examples:\n  infinisheet get budget/2026 A1:F20\n  infinisheet get budget/2026 A:C --output csv\n  infinisheet get budget/2026 --output markdown\n  total=$(infinisheet get budget/2026 F20 --raw)"
    )]
    Get(cli::cells::Get),
    /// Import a CSV file into a sheet.
    #[command(
        after_help = "Examples:\n  infinisheet import budget/2026 data.csv\n  infinisheet import budget/2026 data.csv --replace --delimiter ';' --encoding latin1\n  curl -s https://example.org/data.csv | infinisheet import budget/2026 -"
    )]
    Import(cli::cells::Import),
    /// Export a sheet (or a range of it) as CSV.
    #[command(
        after_help = "Examples:\n  infinisheet export budget/2026 out.csv\n  infinisheet export budget/2026 - --range A1:D100 | head"
    )]
    Export(cli::cells::Export),
    /// List a sheet's log entries and their metadata.
    #[command(
        after_help = "Examples:\n  infinisheet log budget/2026\n  infinisheet log budget/2026 --from 0 --limit 100    # archived entries too"
    )]
    Log(cli::cells::Log),
    /// Ask for a snapshot of a sheet now (and write it, unless --no-wait).
    #[command(
        after_help = "Examples:\n  infinisheet snapshot budget/2026\n  infinisheet snapshot budget/2026 --no-wait          # a worker writes it"
    )]
    Snapshot(cli::cells::Snapshot),
    /// Run a polling snapshot worker for the catalog's sheets; Ctrl-C or
    /// SIGTERM ends it, exit 0, once the work in hand is done.
    #[command(
        after_help = "Examples:\n  infinisheet worker\n  infinisheet worker budget/2026 --interval 5\n  infinisheet worker --history 2 --keep-snapshots 3\n  infinisheet worker --once"
    )]
    Worker(cli::worker::Worker),
    /// Serve the catalog over HTTP (on loopback unless told otherwise): JSON endpoints, live events,
    /// a page with the sheet in the browser, and the storage itself for
    /// `--logs http://HOST:PORT --blobs http://HOST:PORT` elsewhere.
    #[command(
        after_help = "Examples:\n  infinisheet serve                       # http://127.0.0.1:8080\n  infinisheet serve --listen 127.0.0.1:0  # a free port\n  infinisheet serve --token-file token.txt --read-token-file viewers.txt\n  infinisheet serve --listen 0.0.0.0:8443 --allow-host host --token-file token.txt --tls-cert cert.pem --tls-key key.pem\n  infinisheet serve --listen 127.0.0.1:8080 --token-file token.txt --allow-host sheets.example.org   # behind a proxy\n  INFINISHEET_TOKEN=... infinisheet --logs https://host:8443 --blobs https://host:8443 ls   # from another machine\n\nOnly loopback names, the listen address and --allow-host names are answered; pages of other origins can change nothing; with a token, API clients send `Authorization: Bearer TOKEN` and the page signs in at /login."
    )]
    Serve(cli::serve::Serve),
    /// Build a sheet of a few hundred thousand cells with snapshots (in a
    /// temporary directory, or `--dir`), reopen it cold, and print a
    /// viewport and timings.
    #[command(
        after_help = "Examples:\n  infinisheet demo\n  infinisheet demo --rows 10000 --columns 20 --dir ./demo-storage"
    )]
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

/// The most threads of the runtime's blocking pool. For `import`, four a
/// core and at least eight: tokio's default, 512, spread an import and the
/// snapshots written beside it over 20 threads, and glibc keeps an arena of
/// memory for each (a 100M-cell import peaked at 215 MB in 15.6 s, and at
/// 180 MB in 12.9 s with eight). Every other command keeps tokio's
/// default: under `serve`, SQLite calls waiting for another process's
/// write lock held every thread of a capped pool, and the server stopped
/// answering until the lock was released.
fn blocking_threads(command: &Command) -> usize {
    match command {
        Command::Import(_) => std::thread::available_parallelism()
            .map_or(2, std::num::NonZeroUsize::get)
            .saturating_mul(4)
            .max(8),
        _ => 512,
    }
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
    start_logging(
        cli.verbose,
        cli.quiet,
        matches!(cli.command, Command::Serve(_)),
        cli.log_format,
    );
    cli::set_quiet(cli.quiet);
    cli::set_json_log(cli.log_format == LogFormat::Json);
    match &cli.command {
        Command::Completions { shell } => {
            let mut command = Cli::command();
            clap_complete::generate(*shell, &mut command, "infinisheet", &mut std::io::stdout());
            return ExitCode::SUCCESS;
        }
        Command::Man => {
            return match manual_page(&mut std::io::stdout().lock()) {
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
        .max_blocking_threads(blocking_threads(&cli.command))
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(cli));
    // The command is done: a read still blocked on a thread of the
    // runtime (standard input that stays open after an import stopped) is
    // not waited for, as it would not be were the reads on the main
    // thread.
    runtime.shutdown_background();
    match result {
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
    // The URLs' place is the command line if either is given there.
    let urls = match (from("logs"), from("blobs")) {
        (Some(ValueSource::CommandLine), _) | (_, Some(ValueSource::CommandLine)) => {
            Some(ValueSource::CommandLine)
        }
        (logs, blobs) => logs.or(blobs),
    };
    let home = from("home");
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
    .and_then(|cli| {
        // Checked here, not by clap: its `requires` refused a flag with
        // the other from the environment, naming the flag given.
        match (&cli.logs, &cli.blobs) {
            (Some(_), None) => Err(
                "--logs needs --blobs (or INFINISHEET_BLOBS): the sheets' logs and files are stored apart".into(),
            ),
            (None, Some(_)) => Err(
                "--blobs needs --logs (or INFINISHEET_LOGS): the sheets' logs and files are stored apart".into(),
            ),
            _ => Ok(cli),
        }
    })
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
        Command::Serve(args) => cli::serve::run(&place, args).await,
        Command::Completions { .. } | Command::Man => Ok(()),
    }
}
