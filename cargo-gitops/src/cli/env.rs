//! `cargo gitops env`: prints the ref, commit, environment and tags of a deployment, and the
//! CI they were read from.

use std::path::Path;

use serde::Serialize;

use cargo_gitops::ci::{Runner, github};
use cargo_gitops::config::Config;
use cargo_gitops::deployment::{self, Deployment, Request};
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

/// `env` of a repository that ships several images, without -p: the ref, commit and
/// environment once, then each service's image and tags (`--format json`: under `services`;
/// `--format github`: `packages`, a JSON list for a job matrix).
#[derive(Debug, Serialize)]
struct ServiceSet {
    #[serde(rename = "ref")]
    git_ref: String,
    sha: String,
    environment: Option<String>,
    timestamp: u64,
    services: Vec<Service>,
}

#[derive(Debug, Serialize)]
struct Service {
    package: String,
    image: Option<String>,
    tags: Vec<String>,
    lookup_tag: String,
}

pub fn run_set(
    configs: &[Config],
    global: &GlobalArgs,
    runner: &Runner,
    cwd: &Path,
) -> Result<(), Error> {
    let request = Request {
        ref_arg: global.git_ref.as_deref(),
        sha_arg: global.sha.as_deref(),
        timestamp: global.timestamp,
    };
    let deployments = deployment::plan_each(configs, &request, runner, cwd)?;
    let first = &deployments[0];
    let set = ServiceSet {
        git_ref: first.git_ref.clone(),
        sha: first.sha.clone(),
        environment: first.environment.clone(),
        timestamp: first.timestamp,
        services: configs
            .iter()
            .zip(&deployments)
            .map(|(config, d)| Service {
                package: config.service_name(),
                image: d.image.clone(),
                tags: d.tags.clone(),
                lookup_tag: d.lookup_tag.clone(),
            })
            .collect(),
    };
    match global.format {
        Format::Human => {
            let mut text = format!(
                "{:<12} {}\n{:<12} {}\n{:<12} {}\n",
                "ref",
                set.git_ref,
                "sha",
                set.sha,
                "environment",
                set.environment.as_deref().unwrap_or("none")
            );
            for service in &set.services {
                text.push_str(&format!("{:<12} {}\n", "service", service.package));
                let image = service.image.as_deref().unwrap_or("none");
                for (i, tag) in service.tags.iter().enumerate() {
                    let key = if i == 0 { "  tags" } else { "" };
                    text.push_str(&format!("{key:<12} {image}:{tag}\n"));
                }
                text.push_str(&format!("{:<12} {}\n", "  lookup tag", service.lookup_tag));
            }
            write_stdout(&text)
        }
        Format::Json => {
            let json = serde_json::to_string_pretty(&set).expect("a service set always serialises");
            write_stdout(&format!("{json}\n"))
        }
        Format::Github => {
            let packages: Vec<&str> = set.services.iter().map(|s| s.package.as_str()).collect();
            let text = github::format_outputs(&[
                ("ref", set.git_ref.clone()),
                ("sha", set.sha.clone()),
                ("environment", set.environment.clone().unwrap_or_default()),
                (
                    "packages",
                    serde_json::to_string(&packages).expect("names always serialise"),
                ),
                ("timestamp", set.timestamp.to_string()),
            ]);
            match &runner.output_file {
                Some(path) => github::append(path, &text),
                None => write_stdout(&text),
            }
        }
        Format::Gitlab => Err(Error::usage(
            "env --format gitlab reports one image; add -p NAME for the image to report",
        )),
    }
}
