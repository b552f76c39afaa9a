//! `cargo gitops env`: prints the ref, commit, environment and tags of a deployment, and the
//! CI they were read from.

use cargo_gitops::ci::{Runner, github};
use cargo_gitops::deployment::Deployment;
use cargo_gitops::error::Error;

use super::GlobalArgs;
use super::output::{Format, write_dotenv, write_stdout};

pub fn run(d: &Deployment, global: &GlobalArgs, runner: &Runner) -> Result<(), Error> {
    match global.format {
        Format::Human => write_stdout(&human_text(d)),
        Format::Json => {
            let json = serde_json::to_string_pretty(d).expect("a deployment always serialises");
            write_stdout(&format!("{json}\n"))
        }
        Format::Github => {
            let text = github::format_outputs(&[
                ("ref", d.git_ref.clone()),
                ("sha", d.sha.clone()),
                ("environment", d.environment.clone().unwrap_or_default()),
                ("tag", d.tags.first().cloned().unwrap_or_default()),
                ("tags", d.tags.join("\n")),
                ("lookup_tag", d.lookup_tag.clone()),
                ("image", d.image.clone().unwrap_or_default()),
                ("timestamp", d.timestamp.to_string()),
            ]);
            match &runner.output_file {
                Some(path) => github::append(path, &text),
                None => write_stdout(&text),
            }
        }
        Format::Gitlab => write_dotenv(
            &[
                ("ref", d.git_ref.clone()),
                ("sha", d.sha.clone()),
                ("environment", d.environment.clone().unwrap_or_default()),
                ("tag", d.tags.first().cloned().unwrap_or_default()),
                ("tags", d.tags.join(",")),
                ("lookup_tag", d.lookup_tag.clone()),
                ("image", d.image.clone().unwrap_or_default()),
                ("timestamp", d.timestamp.to_string()),
            ],
            global.dotenv.as_deref(),
        ),
    }
}

/// The deployment as aligned `key value` lines, for a person.
fn human_text(d: &Deployment) -> String {
    let mut lines = vec![
        ("ref", d.git_ref.clone()),
        ("sha", d.sha.clone()),
        (
            "environment",
            d.environment.clone().unwrap_or_else(|| "none".to_owned()),
        ),
        (
            "image",
            d.image
                .clone()
                .unwrap_or_else(|| "none (set registry and image in the config)".to_owned()),
        ),
    ];
    for (i, tag) in d.tags.iter().enumerate() {
        lines.push((if i == 0 { "tags" } else { "" }, tag.clone()));
    }
    lines.push(("lookup tag", d.lookup_tag.clone()));
    lines.push((
        "ci",
        d.ci.map_or_else(|| "none".to_owned(), |ci| ci.name().to_owned()),
    ));
    if let Some(pull_request) = &d.pull_request {
        let number = pull_request
            .number
            .as_deref()
            .map_or(String::new(), |n| format!("{n} "));
        let fork = match pull_request.fork {
            Some(true) => ", from a fork",
            Some(false) => "",
            None => ", fork unknown",
        };
        lines.push((
            "pull request",
            format!("{number}from {}{fork}", pull_request.source_branch),
        ));
    }
    lines
        .iter()
        .map(|(k, v)| format!("{k:<12} {v}\n"))
        .collect()
}
