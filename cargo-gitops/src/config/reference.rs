//! Checks `registry` and `image` (and environments' `image`) against the distribution
//! reference grammar at load, so that a bad value is an error that names the key and shows the
//! corrected value, instead of a strange reference later. Parsing references for use is the
//! registry module's job.

use std::path::Path;

use super::Config;
use crate::error::Error;

/// `registry` is `HOST[:PORT][/NAMESPACE]`; `image` is a repository path without registry,
/// tag or digest; both lowercase.
pub fn check(config: &Config, file: &Path, key: &dyn Fn(&str) -> String) -> Result<(), Error> {
    let bad = |name: &str, message: String| Error::Config {
        file: file.to_path_buf(),
        line: None,
        key: key(name),
        message,
    };
    if let Some(registry) = &config.registry {
        check_registry(registry).map_err(|m| bad("registry", m))?;
    }
    if let Some(image) = &config.image_name {
        check_image(image, config.registry.as_deref(), Whose::Top).map_err(|m| bad("image", m))?;
    }
    for (index, env) in config.environments.iter().enumerate() {
        if let Some(image) = &env.image {
            check_image(image, config.registry.as_deref(), Whose::Environment)
                .map_err(|m| bad(&format!("environments[{index}].image"), m))?;
        }
    }
    if let Some(image) = config.image_for(None) {
        crate::registry::client::Repository::parse(&image)
            .map_err(|e| bad("image", e.to_string()))?;
    }
    Ok(())
}

fn check_registry(registry: &str) -> Result<(), String> {
    let shown = registry.escape_debug();
    if registry.contains("://") || registry.contains('@') {
        return Err("write the registry as HOST[:PORT][/NAMESPACE], without a scheme or credentials (logins come from docker login or --registry-user)".to_owned());
    }
    let trimmed = registry.trim_end_matches('/');
    let (host_port, namespace) = trimmed.split_once('/').unwrap_or((trimmed, ""));
    let (host, port) = match host_port.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (host_port, None),
    };
    let host_ok = !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    if !host_ok {
        return Err(format!(
            "`{shown}` does not start with a registry host name; write HOST[:PORT][/NAMESPACE] such as ghcr.io/owner"
        ));
    }
    if registry.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(format!(
            "`{shown}` has uppercase letters; write `{}`",
            registry.to_ascii_lowercase()
        ));
    }
    if let Some(port) = port
        && !port.parse::<u32>().is_ok_and(|p| (1..=65535).contains(&p))
    {
        return Err(format!(
            "port `{}` of `{shown}` is not between 1 and 65535",
            port.escape_debug()
        ));
    }
    if !namespace.is_empty() {
        check_path(namespace).map_err(|m| format!("`{shown}`: {m}"))?;
    }
    Ok(())
}

/// Whose `image` is checked: the top-level one, or an environment's (which may name a
/// registry of its own when `registry` is unset).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Whose {
    Top,
    Environment,
}

/// Checks `registry` and `image` where they are written: a package's own table, whose keys
/// the workspace's table only fills in, so that an error names that table's key and file.
/// `registry` is the one the image will be under (the table's, else the workspace's).
pub(super) fn check_table(
    written: &super::raw::RawConfig,
    registry: Option<&str>,
    file: &Path,
    table: &str,
) -> Result<(), Error> {
    let bad = |name: &str, message: String| Error::Config {
        file: file.to_path_buf(),
        line: None,
        key: format!("{table}.{name}"),
        message,
    };
    if let Some(written) = &written.registry {
        check_registry(written).map_err(|m| bad("registry", m))?;
    }
    if let Some(image) = &written.image {
        check_image(image, registry, Whose::Top).map_err(|m| bad("image", m))?;
    }
    Ok(())
}

fn check_image(image: &str, registry: Option<&str>, whose: Whose) -> Result<(), String> {
    let shown = image.escape_debug();
    if let Some((name, _)) = image.split_once('@') {
        return Err(format!(
            "`{shown}` holds a digest; an image names a repository, the digest comes from the build: write `{}`",
            name.escape_debug()
        ));
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    if let Some((name, _)) = last.split_once(':') {
        let corrected = format!("{}{name}", &image[..image.len() - last.len()]);
        return Err(format!(
            "`{shown}` holds a tag; tags come from the environment: write `{}`",
            corrected.escape_debug()
        ));
    }
    let names_host =
        |first: &str| first.contains('.') || first.contains(':') || first == "localhost";
    if registry.is_none()
        && let Some((first, rest)) = image.split_once('/')
        && names_host(first)
    {
        // A full reference, for an environment whose images live in a registry of their own.
        check_registry(first)?;
        return check_path(rest).map_err(|m| format!("`{shown}`: {m}"));
    }
    if let (Some(registry), Some((first, rest))) = (registry, image.split_once('/'))
        && names_host(first)
    {
        let registry_host = registry.split('/').next().unwrap_or(registry);
        if whose == Whose::Environment && registry_host != first {
            return Err(format!(
                "`{shown}` names another registry (`{}`) than `registry` (`{}`); with `registry` set an environment's image is a repository there: drop the host, or unset `registry` and write every image as a full reference",
                first.escape_debug(),
                registry.escape_debug()
            ));
        }
        let registry = registry.trim_end_matches('/');
        // `registry = "ghcr.io/acme"` and `image = "ghcr.io/acme/app"`: what is left is `app`.
        let corrected = match image.strip_prefix(&format!("{registry}/")) {
            Some(name) => format!("write image = \"{}\"", name.escape_debug()),
            None if registry == first => format!("write image = \"{}\"", rest.escape_debug()),
            None => format!(
                "write registry = \"{}\" and image = \"{}\", or drop the host from image",
                first.escape_debug(),
                rest.escape_debug()
            ),
        };
        return Err(format!(
            "`{shown}` repeats a registry host (`{}`) that `registry` already gives; {corrected}",
            first.escape_debug()
        ));
    }
    check_path(image).map_err(|m| format!("`{shown}`: {m}"))
}

/// Repository path components: `[a-z0-9]+` joined by `.`, `_`, `__` or runs of `-`.
fn check_path(path: &str) -> Result<(), String> {
    if path.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(format!(
            "repository names are lowercase; write `{}`",
            path.to_ascii_lowercase().escape_debug()
        ));
    }
    for component in path.split('/') {
        let ok = !component.is_empty()
            && component.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
            })
            && component.as_bytes()[0].is_ascii_alphanumeric()
            && component.as_bytes()[component.len() - 1].is_ascii_alphanumeric()
            && !component.contains("..")
            && !component.contains("___");
        if !ok {
            return Err(format!(
                "`{}` is not a repository name component (lowercase letters and digits, separated by `.`, `_` or `-`)",
                component.escape_debug()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_environment_image_on_another_registry_is_not_called_a_repeat() {
        let error =
            check_image("quay.io/team/app", Some("ghcr.io/acme"), Whose::Environment).unwrap_err();
        assert!(
            error.starts_with("`quay.io/team/app` names another registry (`quay.io`) than `registry` (`ghcr.io/acme`)"),
            "{error}"
        );
        assert!(!error.contains("repeat"), "{error}");
        // The same host as `registry`: a repeat, for an environment's image too.
        let error =
            check_image("ghcr.io/acme/app", Some("ghcr.io/acme"), Whose::Environment).unwrap_err();
        assert!(error.contains("repeats a registry host"), "{error}");
    }

    #[test]
    fn bad_references_show_the_corrected_value() {
        let image = |i: &str, r: Option<&str>| check_image(i, r, Whose::Top).unwrap_err();
        assert!(image("app:latest", Some("ghcr.io/o")).contains("write `app`"));
        assert!(image("o/app@sha256:ab", None).contains("write `o/app`"));
        assert!(image("ghcr.io/other/x", Some("ghcr.io")).contains("write image = \"other/x\""));
        assert!(image("Gitops-Demo", Some("ghcr.io")).contains("write `gitops-demo`"));
        assert!(image("a//b", None).contains("not a repository name component"));
        let registry = |r: &str| check_registry(r).unwrap_err();
        assert!(registry("localhost:99999").contains("not between 1 and 65535"));
        assert!(registry("localhost:0").contains("not between 1 and 65535"));
        assert!(registry("GHCR.io/o").contains("write `ghcr.io/o`"));
        assert!(registry("ghcr.io/Owner").contains("write `ghcr.io/owner`"));
        assert!(registry("ghcr.io\n/x").contains("registry host"));
        assert!(registry("https://ghcr.io").contains("without a scheme"));
        assert!(check_registry("127.0.0.1:5000/a/b").is_ok());
        assert!(check_image("gitops-demo-app", Some("ghcr.io/au2001"), Whose::Top).is_ok());
        assert!(check_image("team/app_1.x", None, Whose::Top).is_ok());
        // Without `registry`, an image may be a full reference, checked as one.
        assert!(
            check_image(
                "registry.example.com:5000/acme/shop",
                None,
                Whose::Environment
            )
            .is_ok()
        );
        assert!(
            image("registry.example.com:99999/acme/shop", None).contains("not between 1 and 65535")
        );
        assert!(image("Registry.example.com/acme/shop", None).contains("uppercase"));
    }
}
