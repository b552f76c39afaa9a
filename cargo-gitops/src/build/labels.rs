//! The labels every image carries (`org.opencontainers.image.*`), from the commit and the
//! package only: never the environment, the tags or the build time, so that one commit gives
//! one image whichever environment builds it first. How builders pass them on is theirs.

use std::collections::BTreeMap;
use std::path::Path;

use crate::config::Config;

pub const REVISION: &str = "org.opencontainers.image.revision";
pub const SOURCE: &str = "org.opencontainers.image.source";
pub const CREATED: &str = "org.opencontainers.image.created";
pub const VERSION: &str = "org.opencontainers.image.version";
pub const TITLE: &str = "org.opencontainers.image.title";

/// What the labels are made of.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    /// The commit, 40 hex digits.
    pub sha: String,
    /// Where the source lives (`https://github.com/o/r`), when known.
    pub source: Option<String>,
    /// The commit's time (or `SOURCE_DATE_EPOCH`), Unix seconds.
    pub epoch: u64,
    /// The package's version, when the image ships a package that has one.
    pub version: Option<String>,
    /// The image's name: the configured image, else the package.
    pub title: Option<String>,
}

impl Origin {
    /// The origin of `sha` as `config` describes the package.
    pub fn new(config: &Config, sha: &str, source: Option<String>, epoch: u64) -> Origin {
        Origin {
            sha: sha.to_owned(),
            source,
            epoch,
            version: package_version(config),
            title: title(config),
        }
    }

    /// The labels, keyed by name.
    pub fn labels(&self) -> BTreeMap<String, String> {
        let mut labels = BTreeMap::from([
            (REVISION.to_owned(), self.sha.clone()),
            (CREATED.to_owned(), crate::time::rfc3339(self.epoch)),
        ]);
        let optional = [
            (SOURCE, &self.source),
            (VERSION, &self.version),
            (TITLE, &self.title),
        ];
        for (key, value) in optional {
            if let Some(value) = value {
                labels.insert(key.to_owned(), value.clone());
            }
        }
        labels
    }
}

/// The name an image goes by, whatever the environment: the configured image's last path
/// segment (not an environment's own repository), else the package.
pub fn title(config: &Config) -> Option<String> {
    config
        .image_name
        .as_deref()
        .map(|name| name.rsplit('/').next().unwrap_or(name).to_owned())
        .or_else(|| config.package.clone())
}

/// The chosen package's version from its `Cargo.toml` (`version = "…"`, or inherited with
/// `version.workspace = true`); `None` without a package or a version.
pub fn package_version(config: &Config) -> Option<String> {
    config.package.as_ref()?;
    let manifest = read_toml(&config.package_dir.as_ref()?.join("Cargo.toml"))?;
    match manifest.get("package")?.get("version")? {
        toml::Value::String(version) => Some(version.clone()),
        toml::Value::Table(table) if table.get("workspace")?.as_bool()? => {
            let root = read_toml(config.manifest.as_ref()?)?;
            let version = root.get("workspace")?.get("package")?.get("version")?;
            version.as_str().map(str::to_owned)
        }
        _ => None,
    }
}

fn read_toml(path: &Path) -> Option<toml::Table> {
    std::fs::read_to_string(path).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_name_the_commit_and_package_only() {
        let origin = Origin {
            sha: "b4b9fda0123456789abcdef0123456789abcdef0".into(),
            source: Some("https://example.com/app.git".into()),
            epoch: 1_654_880_868,
            version: Some("1.2.3".into()),
            title: Some("app".into()),
        };
        let labels = origin.labels();
        assert_eq!(
            labels,
            BTreeMap::from([
                (CREATED.to_owned(), "2022-06-10T17:07:48Z".to_owned()),
                (REVISION.to_owned(), origin.sha.clone()),
                (SOURCE.to_owned(), "https://example.com/app.git".to_owned()),
                (TITLE.to_owned(), "app".to_owned()),
                (VERSION.to_owned(), "1.2.3".to_owned()),
            ])
        );
        let bare = Origin {
            version: None,
            source: None,
            title: None,
            ..origin
        };
        assert_eq!(bare.labels().len(), 2);
    }

    #[test]
    fn version_is_read_from_the_package_or_its_workspace() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("app")).unwrap();
        std::fs::write(
            root.join("Cargo.toml"),
            "[workspace]\nmembers = [\"app\"]\n[workspace.package]\nversion = \"2.0.1\"\n",
        )
        .unwrap();
        std::fs::write(
            root.join("app/Cargo.toml"),
            "[package]\nname = \"app\"\nversion.workspace = true\n",
        )
        .unwrap();
        let mut config = Config::defaults();
        config.manifest = Some(root.join("Cargo.toml"));
        config.package = Some("app".into());
        config.package_dir = Some(root.join("app"));
        assert_eq!(package_version(&config).as_deref(), Some("2.0.1"));
        std::fs::write(
            root.join("app/Cargo.toml"),
            "[package]\nname = \"app\"\nversion = \"0.3.0\"\n",
        )
        .unwrap();
        assert_eq!(package_version(&config).as_deref(), Some("0.3.0"));
        config.package = None;
        assert_eq!(package_version(&config), None);
        assert_eq!(title(&config), None);
        config.image_name = Some("team/app".into());
        assert_eq!(title(&config).as_deref(), Some("app"));
    }
}
