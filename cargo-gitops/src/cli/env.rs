//! `cargo gitops env`: prints the ref, commit, environment and tags of a deployment.

use cargo_gitops::ci::github::{self, Actions};
use cargo_gitops::deployment::Deployment;
use cargo_gitops::error::Error;

use super::output::{Format, write_stdout};

pub fn run(d: &Deployment, format: Format, actions: &Actions) -> Result<(), Error> {
    match format {
        Format::Human => {
            let mut lines = vec![
                ("ref", d.git_ref.clone()),
                ("sha", d.sha.clone()),
                (
                    "environment",
                    d.environment.clone().unwrap_or_else(|| "none".to_owned()),
                ),
                (
                    "image",
                    d.image.clone().unwrap_or_else(|| {
                        "none (set registry and image in the config)".to_owned()
                    }),
                ),
            ];
            for (i, tag) in d.tags.iter().enumerate() {
                lines.push((if i == 0 { "tags" } else { "" }, tag.clone()));
            }
            lines.push(("lookup tag", d.lookup_tag.clone()));
            let text: String = lines
                .iter()
                .map(|(k, v)| format!("{k:<12} {v}\n"))
                .collect();
            write_stdout(&text)
        }
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
            match &actions.output {
                Some(path) => github::append(path, &text),
                None => write_stdout(&text),
            }
        }
    }
}
