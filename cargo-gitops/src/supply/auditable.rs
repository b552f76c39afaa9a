//! The dependency list a native build embeds in its binary, in the format `cargo auditable`
//! defined (JSON, zlib-compressed, in a linker section named `.dep-v0`), so that scanners that
//! read Rust binaries (syft, grype, trivy, `cargo audit bin`) see the crates of the image
//! without any file beside the binary.
//!
//! Owns the JSON (through `auditable-serde`, the format's own types), its compression, the
//! object file that carries it and the linker arguments that keep it; which crates are listed
//! is `crates`' job, and running the compiler is `build::native`'s.
//!
//! The list holds the crates linked into the binary, all of kind `runtime`, the package as
//! the one `root`: the same crates the SBOM lists, so a scan of the image and the attached
//! SBOM agree. Build-time crates (build scripts, proc-macros) are not in the binary and are
//! not listed.

use std::io::Write;
use std::path::{Path, PathBuf};

use auditable_serde::{DependencyKind, Package, Source as AuditSource, VersionInfo};

use crate::error::Error;
use crate::supply::crates::{LinkedCrates, Source};

/// The section scanners look for.
pub const SECTION: &str = ".dep-v0";

/// The symbol over the section's data; the linker is told to keep it, so `--gc-sections`
/// does not drop a section nothing in the program refers to.
pub const SYMBOL: &str = "AUDITABLE_VERSION_INFO";

/// The crates in cargo-auditable's structure; indices are the list's own.
pub fn version_info(crates: &LinkedCrates) -> Result<VersionInfo, Error> {
    let packages = crates
        .crates
        .iter()
        .enumerate()
        .map(|(index, krate)| {
            let version = semver::Version::parse(&krate.version).map_err(|e| Error::Build {
                tool: "cargo".to_owned(),
                message: format!(
                    "crate `{}` has version `{}`, which is not SemVer ({e}); fix its manifest",
                    krate.name, krate.version
                ),
            })?;
            Ok(Package {
                name: krate.name.clone(),
                version,
                source: match &krate.source {
                    Source::CratesIo => AuditSource::CratesIo,
                    Source::Registry { .. } => AuditSource::Registry,
                    Source::Git { .. } => AuditSource::Git,
                    Source::Path => AuditSource::Local,
                },
                kind: DependencyKind::Runtime,
                dependencies: krate.dependencies.clone(),
                root: index == 0,
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    // Format 1: proc-macros are not runtime dependencies (format 0 listed them as such).
    Ok(VersionInfo {
        packages,
        format: 1,
    })
}

/// The section's bytes: the JSON, zlib-compressed at a fixed level so the bytes are stable.
pub fn section_data(info: &VersionInfo) -> Result<Vec<u8>, Error> {
    let json = serde_json::to_vec(info)
        .map_err(|e| Error::Internal(format!("the dependency list does not serialize: {e}")))?;
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    encoder
        .write_all(&json)
        .and_then(|()| encoder.finish())
        .map_err(|e| Error::Internal(format!("compressing the dependency list failed: {e}")))
}

/// A relocatable ELF object for `triple` whose `.dep-v0` section holds `data`, with
/// [`SYMBOL`] over it.
pub fn object_file(data: &[u8], triple: &str) -> Result<Vec<u8>, Error> {
    use object::write::{Object, Symbol, SymbolSection};
    use object::{
        Architecture, BinaryFormat, Endianness, SectionKind, SymbolFlags, SymbolKind, SymbolScope,
    };

    let architecture = match triple.split('-').next().unwrap_or_default() {
        "x86_64" => Architecture::X86_64,
        "aarch64" => Architecture::Aarch64,
        _ => {
            return Err(Error::usage(format!(
                "cannot embed the dependency list in a binary for {triple}; native builds support x86_64 and aarch64 Linux"
            )));
        }
    };
    if !triple.contains("-linux-") {
        return Err(Error::usage(format!(
            "cannot embed the dependency list in a binary for {triple}; native builds support x86_64 and aarch64 Linux"
        )));
    }
    let mut object = Object::new(BinaryFormat::Elf, architecture, Endianness::Little);
    let section = object.add_section(
        Vec::new(),
        SECTION.as_bytes().to_vec(),
        SectionKind::ReadOnlyData,
    );
    let offset = object.append_section_data(section, data, 1);
    object.add_symbol(Symbol {
        name: SYMBOL.as_bytes().to_vec(),
        value: offset,
        size: data.len() as u64,
        kind: SymbolKind::Data,
        // Global for the linker, not exported from the binary.
        scope: SymbolScope::Linkage,
        weak: false,
        section: SymbolSection::Section(section),
        flags: SymbolFlags::None,
    });
    object
        .write()
        .map_err(|e| Error::Internal(format!("writing the dependency object failed: {e}")))
}

/// The object for `crates` and `triple` and the path in `dir` it goes to, named after its
/// content: a new list is a new path, so cargo links the binary again (and only it) exactly
/// when the list changes. Nothing is written, so a plan (or a dry run) can name the path.
pub fn object_for(
    crates: &LinkedCrates,
    triple: &str,
    dir: &Path,
) -> Result<(PathBuf, Vec<u8>), Error> {
    let object = object_file(&section_data(&version_info(crates)?)?, triple)?;
    let hash = crate::supply::sha256_hex(&object);
    Ok((
        dir.join(format!("dep-v0-{triple}-{}.o", &hash[..16])),
        object,
    ))
}

/// [`object_for`], written; returns its path.
pub fn write_object(crates: &LinkedCrates, triple: &str, dir: &Path) -> Result<PathBuf, Error> {
    let (path, object) = object_for(crates, triple, dir)?;
    crate::files::write_whole(&path, &object)?;
    Ok(path)
}

/// Where a build of `triple` keeps its dependency objects: beside cargo's output.
pub fn object_dir(target_dir: &Path, triple: &str) -> PathBuf {
    target_dir.join("gitops").join("dep-v0").join(triple)
}

/// The rustc arguments, for the binary's own crate only, that link `object` and keep its
/// section.
pub fn rustc_args(object: &Path) -> Vec<String> {
    vec![
        "-C".to_owned(),
        format!("link-arg={}", object.display()),
        "-C".to_owned(),
        format!("link-arg=-Wl,--undefined={SYMBOL}"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::supply::crates::Crate;
    use std::io::Read;

    fn crates() -> LinkedCrates {
        let krate = |name: &str, version: &str, source: Source, dependencies: Vec<usize>| Crate {
            name: name.into(),
            version: version.into(),
            source,
            license: None,
            checksum: None,
            dependencies,
        };
        LinkedCrates {
            crates: vec![
                krate("app", "0.1.0", Source::Path, vec![1]),
                krate("memchr", "2.8.3", Source::CratesIo, vec![]),
            ],
        }
    }

    #[test]
    fn the_section_is_cargo_auditable_json_compressed() {
        let data = section_data(&version_info(&crates()).unwrap()).unwrap();
        let mut json = String::new();
        flate2::read::ZlibDecoder::new(data.as_slice())
            .read_to_string(&mut json)
            .unwrap();
        assert_eq!(
            json,
            r#"{"packages":[{"name":"app","version":"0.1.0","source":"local","dependencies":[1],"root":true},{"name":"memchr","version":"2.8.3","source":"crates.io"}],"format":1}"#
        );
        // auditable-serde's reader checks one root and no cycle.
        let back: VersionInfo = json.parse().unwrap();
        assert_eq!(back.packages.len(), 2);
    }

    #[test]
    fn the_object_has_the_section_and_the_symbol() {
        use object::{Object, ObjectSection, ObjectSymbol};
        let data = section_data(&version_info(&crates()).unwrap()).unwrap();
        for triple in ["x86_64-unknown-linux-musl", "aarch64-unknown-linux-gnu"] {
            let bytes = object_file(&data, triple).unwrap();
            assert_eq!(bytes, object_file(&data, triple).unwrap());
            let file = object::File::parse(bytes.as_slice()).unwrap();
            let section = file.section_by_name(SECTION).unwrap();
            assert_eq!(section.data().unwrap(), data.as_slice());
            let symbol = file.symbols().find(|s| s.name() == Ok(SYMBOL)).unwrap();
            assert!(symbol.is_global() && symbol.size() == data.len() as u64);
        }
        assert!(object_file(&data, "x86_64-pc-windows-msvc").is_err());
    }
}
