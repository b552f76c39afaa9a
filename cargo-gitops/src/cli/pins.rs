//! `cargo gitops pins update`: refreshes the install pin (the SHA-256 of each release archive)
//! and the action pins from the network, and writes them into the configuration file, or
//! prints them with `--print`.

use std::collections::BTreeSet;

use clap::{Args, Subcommand};

use cargo_gitops::ci::{install, pins, workflows};
use cargo_gitops::config::{Config, default_pins};
use cargo_gitops::error::Error;

use super::GlobalArgs;
use super::output::{Format, write_stdout};

#[derive(Debug, Args)]
pub struct PinsArgs {
    #[command(subcommand)]
    pub command: PinsCommand,
}

#[derive(Debug, Subcommand)]
pub enum PinsCommand {
    /// Pin the newest action releases and the checksums of a cargo-gitops release.
    ///
    /// Reads the release's `cargo-gitops-vVERSION.sha256sums` (prebuilt installs only) and each
    /// action's tags with `git ls-remote --tags` (annotated tags peeled to their commit),
    /// keeps each action on its major release unless --major, then rewrites the `actions`
    /// and `install.sha256` tables and `install.version` of the configuration file.
    Update(UpdateArgs),
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// The cargo-gitops release to pin [default: install.version, else this build's version]
    #[arg(long, value_name = "VERSION")]
    pub release: Option<String>,

    /// Where releases are: {URL}/cargo-gitops-vVERSION/… [default: install.base-url, else the repository's GitHub releases]
    #[arg(long, value_name = "URL")]
    pub release_base: Option<String>,

    /// Where actions' repositories are: {URL}/OWNER/REPO (a mirror, or file:// for local repositories)
    #[arg(long, value_name = "URL", default_value = pins::DEFAULT_ACTIONS_BASE)]
    pub actions_base: String,

    /// Let an action move to a new major release
    #[arg(long)]
    pub major: bool,

    /// Print the tables to paste instead of writing the configuration file
    #[arg(long)]
    pub print: bool,

    /// Update only the install pin, or only the action pins
    #[arg(long, value_enum, value_name = "PINS")]
    pub only: Option<Only>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Only {
    Install,
    Actions,
}

pub fn run(args: &PinsArgs, config: &Config, global: &GlobalArgs) -> Result<(), Error> {
    let PinsCommand::Update(args) = &args.command;
    if global.format != Format::Human {
        return Err(Error::usage(
            "pins update prints TOML; drop --format (use --print to see the tables)",
        ));
    }
    let mut settings = config.workflows.clone();
    let mut update = pins::Update::default();
    let install_too = args.only != Some(Only::Actions);
    let actions_too = args.only != Some(Only::Install);
    if install_too && install::is_prebuilt(&settings) {
        let version = match &args.release {
            Some(version) => version.clone(),
            None => install::version(&settings)?,
        };
        let base = args
            .release_base
            .clone()
            .or_else(|| settings.install.base_url.clone())
            .unwrap_or_else(|| install::DEFAULT_BASE_URL.to_owned());
        let (checksums, notes) = pins::install_update(&base, &version)?;
        update.notes.extend(notes);
        settings.install.version = Some(version.clone());
        settings.install.sha256 = checksums.clone();
        update.install = Some((version, checksums));
    } else if install_too && (args.release.is_some() || args.release_base.is_some()) {
        return Err(Error::usage(
            "--release and --release-base pin a prebuilt install, but install.mode is not \"prebuilt\"",
        ));
    }

    // The actions the workflows use, and any pin the configuration sets of its own.
    let mut config = config.clone();
    config.workflows = settings.clone();
    let files = workflows::generate(&config, &settings)?;
    let defaults = default_pins();
    let mut used: BTreeSet<String> = files
        .iter()
        .flat_map(|f| f.contents.lines())
        .filter_map(|line| {
            line.trim_start()
                .trim_start_matches("- ")
                .strip_prefix("uses: ")
        })
        .filter_map(|uses| uses.split_once('@').map(|(action, _)| action.to_owned()))
        .filter(|action| settings.pins.contains_key(action))
        .collect();
    used.extend(
        settings
            .pins
            .iter()
            .filter(|(action, pin)| defaults.get(*action) != Some(pin))
            .map(|(action, _)| action.clone()),
    );
    let used: Vec<String> = used.into_iter().collect();
    if actions_too {
        let (actions, notes) =
            pins::action_updates(&settings, &used, &args.actions_base, args.major)?;
        update.actions = actions;
        update.notes.extend(notes);
    }

    if !global.quiet {
        for note in &update.notes {
            eprintln!("{note}");
        }
    }
    let path = config.manifest.clone().ok_or_else(|| {
        Error::usage("there is no configuration file to write the pins into; create Cargo.toml (or gitops.toml), or pass --print")
    })?;
    let text = std::fs::read_to_string(&path).map_err(|source| Error::ReadManifest {
        path: path.clone(),
        source,
    })?;
    if args.print {
        let prefix = pins::table_prefix(&path, &text)?;
        return write_stdout(&pins::render(prefix, &update));
    }
    let new = pins::rewrite(&path, &text, &update)?;
    if new != text {
        cargo_gitops::files::write_whole(&path, new.as_bytes())?;
    }
    if !global.quiet {
        eprintln!(
            "{} {}; next: cargo gitops init-workflows",
            if new == text {
                "pins are up to date in"
            } else {
                "wrote the pins into"
            },
            path.display()
        );
    }
    Ok(())
}
