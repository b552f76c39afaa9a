//! Supply-chain documents of native builds, checked with the real tools: the SBOM of a fixture
//! crate validated by spdx-tools' `pyspdxtools`, its crates compared with what cargo compiled
//! for the target and its checksums with the registry's archives; the dependency list linked
//! into the binary read back from an OCI layout by `syft`; the provenance statement checked
//! against a JSON schema written from the in-toto and SLSA specifications
//! (`supply/provenance.schema.json`) by check-jsonschema.
//!
//! The fixture uses only crates this workspace's lockfile already put in the cargo cache, and
//! its lockfile is made with `--offline`, so no test reaches the network.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use cargo_gitops::build::native::{self, NativeSpec};
use cargo_gitops::supply::crates::Source;
use cargo_gitops::supply::provenance::{
    BuildType, Builder, ExternalParameters, Provenance, SourceCommit, Subject,
};
use cargo_gitops::supply::sbom::Sbom;
use serde_json::Value;

use crate::signing::{assert_verifies, key_pair, referrers_index};
use crate::support::{Dir, Registry, TestCommand, json, run_bounded};

fn host_triple() -> String {
    run_bounded(Command::new("rustc").arg("-vV"), 30)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .unwrap()
        .to_owned()
}

/// A workspace whose binary `fx` links memchr, serde (with serde_core) and a path crate; its
/// proc-macro (serde_derive and what only it uses), a Windows-only crate, a build-dependency
/// and a dev-dependency are never linked on Linux.
fn fixture() -> Dir {
    let dir = Dir::git_repo();
    dir.create(
        "Cargo.toml",
        r#"[package]
name = "fx"
version = "0.3.1"
edition = "2021"
license = "MIT/Apache-2.0"

[dependencies]
memchr = "2"
serde = { version = "1", features = ["derive"] }
helper = { path = "helper" }

[target.'cfg(windows)'.dependencies]
itoa = "1"

[build-dependencies]
cc = "1"

[dev-dependencies]
semver = "1"

[workspace]
members = [".", "helper"]
"#,
    );
    dir.create(
        "src/main.rs",
        r#"#[derive(serde::Serialize)]
struct Greeting {
    #[allow(dead_code)]
    text: &'static str,
}

fn main() {
    let greeting = Greeting { text: "hello from fx" };
    let at = memchr::memchr(b' ', greeting.text.as_bytes()).unwrap();
    println!("{} {at} {}", greeting.text, helper::answer());
}
"#,
    );
    dir.create(
        "build.rs",
        "fn main() {\n    let _ = cc::Build::new();\n}\n",
    );
    dir.create(
        "helper/Cargo.toml",
        "[package]\nname = \"helper\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    );
    dir.create("helper/src/lib.rs", "pub fn answer() -> u32 {\n    42\n}\n");
    run_bounded(
        Command::new(cargo())
            .args(["generate-lockfile", "--offline", "--manifest-path"])
            .arg(dir.join("Cargo.toml")),
        120,
    );
    dir.create(".gitignore", "/target\n/layout\n");
    dir.commit("fx");
    dir
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

fn names_and_versions(sbom: &Sbom) -> BTreeSet<(String, String)> {
    sbom.crates
        .crates
        .iter()
        .map(|c| (c.name.clone(), c.version.clone()))
        .collect()
}

/// The `.crate` archive cargo downloaded for a crate, for an independent checksum.
fn cached_archive(name: &str, version: &str) -> PathBuf {
    let home = std::env::var("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").unwrap()).join(".cargo"));
    let cache = home.join("registry").join("cache");
    std::fs::read_dir(&cache)
        .unwrap()
        .flatten()
        .map(|index| index.path().join(format!("{name}-{version}.crate")))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} {version} is not in {}", cache.display()))
}

#[test]
fn the_sbom_lists_the_linked_crates_and_pyspdxtools_validates_it() {
    let dir = fixture();
    let triple = host_triple();
    let sbom = Sbom::for_binary(&dir.join("Cargo.toml"), "fx", "fx", &triple).unwrap();
    let names: BTreeSet<&str> = sbom.crates.crates.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        BTreeSet::from(["fx", "helper", "memchr", "serde", "serde_core"]),
        "only what the binary links on {triple}"
    );
    assert_eq!(sbom.crates.root().name, "fx");

    let bytes = sbom.to_spdx_json("fx", 1_654_880_868);
    let file = dir.join("fx.spdx.json");
    std::fs::write(&file, &bytes).unwrap();
    let output = Command::new("pyspdxtools")
        .arg("-i")
        .arg(&file)
        .output()
        .expect("pyspdxtools (spdx-tools from PyPI) is installed by .ci/test");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "pyspdxtools: {said}");
    assert!(!said.to_lowercase().contains("invalid"), "{said}");

    let doc: Value = json(&bytes);
    assert_eq!(doc["spdxVersion"], "SPDX-2.3");
    assert_eq!(doc["creationInfo"]["created"], "2022-06-10T17:07:48Z");
    let packages = doc["packages"].as_array().unwrap();
    let by_name = |name: &str| {
        packages
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("no package {name}"))
    };
    let root = by_name("fx");
    assert_eq!(root["versionInfo"], "0.3.1");
    assert_eq!(root["licenseDeclared"], "MIT OR Apache-2.0");
    assert_eq!(root["downloadLocation"], "NOASSERTION");
    assert_eq!(by_name("helper")["licenseDeclared"], "NOASSERTION");
    for krate in &sbom.crates.crates {
        let package = by_name(&krate.name);
        assert_eq!(package["filesAnalyzed"], false);
        assert_eq!(
            package["externalRefs"][0]["referenceLocator"],
            format!("pkg:cargo/{}@{}", krate.name, krate.version)
        );
        if krate.source == Source::CratesIo {
            // The lockfile's checksum is the SHA-256 of the archive cargo downloaded.
            let archive = std::fs::read(cached_archive(&krate.name, &krate.version)).unwrap();
            assert_eq!(
                package["checksums"],
                serde_json::json!([{"algorithm": "SHA256", "checksumValue": crate::support::sha256(&archive).trim_start_matches("sha256:")}])
            );
            assert_eq!(
                package["downloadLocation"],
                format!(
                    "https://crates.io/api/v1/crates/{}/{}/download",
                    krate.name, krate.version
                )
            );
        } else {
            assert!(package.get("checksums").is_none(), "{package}");
        }
    }
    let describes: Vec<&Value> = doc["relationships"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["relationshipType"] == "DESCRIBES")
        .collect();
    assert_eq!(describes.len(), 1);
    assert_eq!(describes[0]["relatedSpdxElement"], root["SPDXID"]);
    let depends: BTreeSet<(String, String)> = doc["relationships"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["relationshipType"] == "DEPENDS_ON")
        .map(|r| {
            let name = |id: &Value| {
                packages.iter().find(|p| p["SPDXID"] == *id).unwrap()["name"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            };
            (name(&r["spdxElementId"]), name(&r["relatedSpdxElement"]))
        })
        .collect();
    let edge = |a: &str, b: &str| (a.to_owned(), b.to_owned());
    assert_eq!(
        depends,
        BTreeSet::from([
            edge("fx", "helper"),
            edge("fx", "memchr"),
            edge("fx", "serde"),
            edge("serde", "serde_core"),
        ])
    );

    // The same commit elsewhere, later: the same bytes.
    let copy = Dir::new();
    for file in [
        "Cargo.toml",
        "Cargo.lock",
        "build.rs",
        "src/main.rs",
        "helper/Cargo.toml",
        "helper/src/lib.rs",
    ] {
        copy.create(file, std::fs::read(dir.join(file)).unwrap());
    }
    let again = Sbom::for_binary(&copy.join("Cargo.toml"), "fx", "fx", &triple).unwrap();
    assert_eq!(again.to_spdx_json("fx", 1_654_880_868), bytes);
}

#[test]
fn a_windows_build_lists_its_windows_crate() {
    // The same fixture for another target: the filter follows the triple, not this machine.
    let dir = fixture();
    let sbom = Sbom::for_binary(
        &dir.join("Cargo.toml"),
        "fx",
        "fx",
        "x86_64-pc-windows-msvc",
    )
    .unwrap();
    let names: BTreeSet<&str> = sbom.crates.crates.iter().map(|c| c.name.as_str()).collect();
    assert!(names.contains("itoa"), "{names:?}");
    assert!(!names.contains("cc") && !names.contains("semver") && !names.contains("syn"));
}

/// The crates cargo compiled as libraries for `triple` (build scripts and proc-macros are
/// compiled for the host, elsewhere), by crate name.
fn libraries_compiled_for(target_dir: &Path, triple: &str) -> BTreeSet<String> {
    let deps = target_dir.join(triple).join("release").join("deps");
    std::fs::read_dir(&deps)
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter_map(|name| {
            let stem = name.strip_prefix("lib")?.strip_suffix(".rlib")?;
            Some(stem.rsplit_once('-')?.0.to_owned())
        })
        .collect()
}

#[test]
fn syft_reads_the_sbom_s_crates_from_the_natively_built_image_and_its_provenance_validates() {
    let dir = fixture();
    let manifest = dir.join("Cargo.toml");
    let target_dir = dir.join("target");
    let spec = NativeSpec {
        manifest: manifest.clone(),
        package: Some("fx".to_owned()),
        bin: None,
        platforms: Vec::new(),
        epoch: 1_654_880_868,
        exposed_ports: Vec::new(),
        env: Default::default(),
        labels: Default::default(),
        base: None,
        build_env: Default::default(),
        include: Vec::new(),
        workdir: None,
        args: Vec::new(),
    };
    let mut binary = native::find_binary(&spec).unwrap();
    // The fixture's own target directory, whatever CARGO_TARGET_DIR this test runs under.
    binary.target_dir = target_dir.clone();
    let installed = native::installed_targets().unwrap();
    let target = native::target_for(native::host_platform(), &installed).unwrap();

    let (crates, object) = native::dependency_object(&binary, &target, &manifest).unwrap();
    let command =
        native::compile_command_embedding(&binary, &target, &manifest, spec.epoch, &object)
            .env("CARGO_TARGET_DIR", target_dir.display().to_string());
    command.run().unwrap();

    let sbom = Sbom::from_crates(crates, &binary.bin, &target.triple);
    let expected = names_and_versions(&sbom);
    // What the SBOM lists is what cargo compiled for the target, the binary's package aside.
    let compiled = libraries_compiled_for(&target_dir, &target.triple);
    let listed: BTreeSet<String> = expected
        .iter()
        .filter(|(name, _)| name != "fx")
        .map(|(name, _)| name.replace('-', "_"))
        .collect();
    assert_eq!(listed, compiled);

    // The binary still runs.
    let built = native::binary_path(&binary, &target);
    let ran = run_bounded(&mut Command::new(&built), 30);
    assert_eq!(ran, "hello from fx 5 42");

    let image = native::pack(&spec, &binary, &[(target.clone(), built.clone())], &[None]).unwrap();
    let layout = dir.join("layout");
    image
        .write_layout(&layout, &["latest".to_owned()], None, &[])
        .unwrap();

    let scan = run_bounded(
        Command::new("syft")
            .arg("scan")
            .arg(format!("oci-dir:{}", layout.display()))
            .args(["-o", "json", "-q"])
            .env("SYFT_CHECK_FOR_APP_UPDATE", "false"),
        300,
    );
    let report: Value = json(scan.as_bytes());
    let found: BTreeSet<(String, String)> = report["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["type"] == "rust-crate")
        .map(|a| {
            assert_eq!(
                a["locations"][0]["path"], "/usr/local/bin/fx",
                "syft found a crate outside the binary: {a}"
            );
            (
                a["name"].as_str().unwrap().to_owned(),
                a["version"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(found, expected, "syft's crates differ from the SBOM's");

    // The same commit cloned elsewhere gives the same binary and the same image: the object's
    // path (in another target directory) leaves no trace in the output.
    let other = Dir::new();
    let clone = other.join("clone");
    other.git([
        "clone",
        "-q",
        dir.path().to_str().unwrap(),
        clone.to_str().unwrap(),
    ]);
    let clone_manifest = clone.join("Cargo.toml");
    let clone_spec = NativeSpec {
        manifest: clone_manifest.clone(),
        ..spec.clone()
    };
    let mut clone_binary = native::find_binary(&clone_spec).unwrap();
    clone_binary.target_dir = clone.join("target");
    let (_, clone_object) =
        native::dependency_object(&clone_binary, &target, &clone_manifest).unwrap();
    assert_ne!(clone_object, object);
    assert_eq!(
        std::fs::read(&clone_object).unwrap(),
        std::fs::read(&object).unwrap()
    );
    native::compile_command_embedding(
        &clone_binary,
        &target,
        &clone_manifest,
        spec.epoch,
        &clone_object,
    )
    .env(
        "CARGO_TARGET_DIR",
        clone_binary.target_dir.display().to_string(),
    )
    .run()
    .unwrap();
    let clone_built = native::binary_path(&clone_binary, &target);
    assert!(
        std::fs::read(&clone_built).unwrap() == std::fs::read(&built).unwrap(),
        "two checkouts of one commit linked different binaries"
    );
    let clone_image = native::pack(
        &clone_spec,
        &clone_binary,
        &[(target.clone(), clone_built)],
        &[None],
    )
    .unwrap();
    assert_eq!(clone_image.digest(), image.digest());

    // The provenance of that image validates against the in-toto and SLSA shape.
    let commit = dir.head();
    let commit_time: u64 = dir
        .git(["show", "-s", "--format=%ct", "HEAD"])
        .trim()
        .parse()
        .unwrap();
    let provenance = Provenance {
        subjects: vec![Subject {
            name: "localhost:5000/fx".to_owned(),
            digest: image.digest().to_owned(),
        }],
        build_type: BuildType::Native,
        external: ExternalParameters {
            command: "cargo gitops build --build-with native".to_owned(),
            package: Some(binary.package.clone()),
            bin: Some(binary.bin.clone()),
            platforms: vec![native::host_platform().to_owned()],
            ..ExternalParameters::default()
        },
        internal: [(
            "targets".to_owned(),
            serde_json::json!([target.triple.clone()]),
        )]
        .into(),
        source: SourceCommit {
            repository: "https://example.com/fx.git".to_owned(),
            commit: commit.clone(),
        },
        base: None,
        cargo_lock: Some(std::fs::read(dir.join("Cargo.lock")).unwrap()),
        builder: Builder::detect(&|key| std::env::var(key).ok()),
        commit_time,
    };
    let statement = provenance.to_json().unwrap();
    assert_eq!(statement, provenance.to_json().unwrap());
    let doc: Value = json(&statement);
    assert_eq!(
        doc["subject"][0]["digest"]["sha256"],
        image.digest().trim_start_matches("sha256:")
    );
    assert_eq!(
        doc["predicate"]["buildDefinition"]["resolvedDependencies"][0]["digest"]["gitCommit"],
        commit
    );
    check_provenance_schema(&dir, &statement, true);
    // The schema is not vacuous: a statement without its builder fails it.
    let mut broken = doc.clone();
    broken["predicate"]["runDetails"]
        .as_object_mut()
        .unwrap()
        .remove("builder");
    check_provenance_schema(&dir, &serde_json::to_vec(&broken).unwrap(), false);
}

/// Runs check-jsonschema (installed by .ci/test) with the schema written from the in-toto
/// and SLSA specifications; `valid` says which answer is expected.
fn check_provenance_schema(dir: &Dir, statement: &[u8], valid: bool) {
    let schema = dir.join("provenance.schema.json");
    std::fs::write(&schema, include_str!("supply/provenance.schema.json")).unwrap();
    let file = dir.join("provenance.json");
    std::fs::write(&file, statement).unwrap();
    let output = Command::new("check-jsonschema")
        .arg("--schemafile")
        .arg(&schema)
        .arg(&file)
        .output()
        .expect("check-jsonschema is installed by .ci/test");
    assert_eq!(
        output.status.success(),
        valid,
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// demo-app's SBOM, from this workspace (where cargo-gitops' features must not leak into
/// demo-app's crates): every crate cargo would compile for it, and valid for pyspdxtools.
#[test]
fn the_demo_app_sbom_is_valid_and_lists_what_cargo_builds_for_it() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let triple = host_triple();
    let sbom = Sbom::for_binary(
        &workspace.join("Cargo.toml"),
        "demo-app",
        "demo-app",
        &triple,
    )
    .unwrap();
    assert_eq!(sbom.crates.root().name, "demo-app");
    // cargo's own answer for a build of demo-app alone: the libraries it would compile for
    // the target, from its unit graph, without compiling anything.
    let plan = run_bounded(
        Command::new(cargo())
            .args(["build", "--release", "--offline", "--manifest-path"])
            .arg(workspace.join("Cargo.toml"))
            .args(["-p", "demo-app", "--target", &triple])
            .args(["-Z", "unstable-options", "--unit-graph"])
            .env("RUSTC_BOOTSTRAP", "1"),
        120,
    );
    let graph: Value = json(plan.as_bytes());
    let compiled: BTreeSet<String> = graph["units"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["platform"] == triple.as_str() && u["mode"] == "build")
        .filter(|u| {
            u["target"]["kind"] == serde_json::json!(["lib"])
                || u["target"]["kind"] == serde_json::json!(["rlib"])
                || u["target"]["kind"] == serde_json::json!(["bin"])
        })
        .map(|u| u["pkg_id"].as_str().unwrap().to_owned())
        .collect();
    let listed: BTreeSet<String> = sbom
        .crates
        .crates
        .iter()
        .map(|c| format!("{}@{}", c.name, c.version))
        .collect();
    let compiled_names: BTreeSet<String> = compiled
        .iter()
        .map(|id| {
            // `registry+https://…#name@1.2.3`, `path+file:///…#0.1.0` (name from the path).
            let (location, fragment) = id.rsplit_once('#').unwrap();
            match fragment.split_once('@') {
                Some((name, version)) => format!("{name}@{version}"),
                None => format!("{}@{fragment}", location.rsplit('/').next().unwrap()),
            }
        })
        .collect();
    assert_eq!(listed, compiled_names);

    let out = Dir::new();
    let file = out.join("demo-app.spdx.json");
    std::fs::write(&file, sbom.to_spdx_json("demo-app", 1_654_880_868)).unwrap();
    run_bounded(Command::new("pyspdxtools").arg("-i").arg(&file), 120);
}

/// `pyspdxtools -i` accepts `file` (and writes nothing but a pass).
fn assert_valid_spdx(file: &Path) {
    let output = Command::new("pyspdxtools")
        .arg("-i")
        .arg(file)
        .output()
        .expect("pyspdxtools (spdx-tools from PyPI) is installed by .ci/test");
    assert!(
        output.status.success(),
        "pyspdxtools refused {}: {}{}",
        file.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The (name, version) of every Rust crate `syft` finds in `source`.
fn syft_crates(source: &str) -> BTreeSet<(String, String)> {
    let scan = run_bounded(
        Command::new("syft")
            .args(["scan", source, "-o", "json", "-q"])
            .env("SYFT_CHECK_FOR_APP_UPDATE", "false")
            .env("SYFT_REGISTRY_INSECURE_USE_HTTP", "true"),
        300,
    );
    let report: Value = json(scan.as_bytes());
    report["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["type"] == "rust-crate")
        .map(|a| {
            (
                a["name"].as_str().unwrap().to_owned(),
                a["version"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The whole path through the command line: `cargo gitops build --build-with native` pushes
/// the image, its SPDX SBOM and its provenance (as referrers, before any tag names the
/// image) and signs it; the SBOM fetched back from the registry validates and lists what syft
/// reads from the image's binary; the provenance names the image and the commit and matches
/// the in-toto/SLSA shape; cosign verifies the signature.
#[test]
fn a_native_build_pushes_its_sbom_and_provenance_and_cosign_verifies_its_signature() {
    let registry = Registry::start();
    let host = registry.host();
    let dir = fixture();
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    dir.create(
        "Cargo.toml",
        format!("{manifest}\n[package.metadata.gitops]\nregistry = \"{host}\"\nimage = \"fx\"\nsign = \"key\"\n"),
    );
    dir.commit("publish fx");
    let keys = Dir::new();
    let (key, public) = key_pair(&keys);
    let output = TestCommand::new(dir.path())
        .args(["build", "--build-with", "native", "--format", "json"])
        .env("GITOPS_SIGNING_KEY", std::fs::read_to_string(&key).unwrap())
        .output();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = json(&output.stdout);
    assert_eq!(report["action"], "built");
    let digest = report["digest"].as_str().unwrap().to_owned();
    let evidence: Vec<(&str, &str)> = report["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["artifact_type"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        evidence,
        [
            ("attached", "application/spdx+json"),
            ("attached", "application/vnd.in-toto+json"),
            ("signed", cargo_gitops::supply::sign::BUNDLE_MEDIA_TYPE),
        ]
    );

    // Each document is listed in the referrers tag and names the image as its subject.
    let index = referrers_index(&registry, "fx", &digest);
    let document = |artifact_type: &str| -> Vec<u8> {
        let entry = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["artifactType"] == artifact_type)
            .unwrap_or_else(|| panic!("no {artifact_type} in {index}"));
        let (bytes, _, _) = registry
            .manifest("fx", entry["digest"].as_str().unwrap())
            .unwrap();
        let manifest = json(&bytes);
        assert_eq!(manifest["subject"]["digest"], digest.as_str(), "{manifest}");
        registry.blob("fx", manifest["layers"][0]["digest"].as_str().unwrap())
    };

    let sbom = document("application/spdx+json");
    let sbom_file = keys.join("fx.spdx.json");
    std::fs::write(&sbom_file, &sbom).unwrap();
    assert_valid_spdx(&sbom_file);
    let listed: BTreeSet<(String, String)> = json(&sbom)["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_owned(),
                p["versionInfo"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let found = syft_crates(&format!("registry:{host}/fx@{digest}"));
    assert_eq!(
        found, listed,
        "syft's crates in the image differ from the SBOM's"
    );
    assert!(found.contains(&("memchr".to_owned(), crate_version(&sbom, "memchr"))));

    let statement = document("application/vnd.in-toto+json");
    check_provenance_schema(&keys, &statement, true);
    let statement = json(&statement);
    assert_eq!(statement["subject"][0]["name"], format!("{host}/fx"));
    assert_eq!(
        statement["subject"][0]["digest"]["sha256"],
        digest.trim_start_matches("sha256:")
    );
    let source = &statement["predicate"]["buildDefinition"]["resolvedDependencies"][0];
    assert_eq!(source["digest"]["gitCommit"], dir.head());

    assert_verifies(&public, &format!("{host}/fx@{digest}"));
    // cosign's own listing finds the documents and the signature (which it names by its
    // predicate type) through the referrers tag.
    let tree = run_bounded(
        Command::new("cosign")
            .args(["tree", "--allow-http-registry=true"])
            .arg(format!("{host}/fx@{digest}")),
        60,
    );
    for artifact_type in [
        "application/spdx+json",
        "application/vnd.in-toto+json",
        "https://sigstore.dev/cosign/sign/v1",
    ] {
        assert!(
            tree.contains(&format!("{artifact_type} artifacts via OCI referrer")),
            "{tree}"
        );
    }

    // Written as an image layout instead: the same image, its documents listed untagged in
    // index.json, and syft still finds the image (by its platform) and the same crates.
    let layout = keys.join("layout");
    let written = TestCommand::new(dir.path())
        .args(["build", "--build-with", "native", "--format", "json"])
        .arg(format!("--output=oci:{}", layout.display()))
        .json();
    assert_eq!(written["digest"], digest.as_str());
    let index = json(&std::fs::read(layout.join("index.json")).unwrap());
    let types: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["artifactType"].as_str())
        .collect();
    assert_eq!(
        types,
        ["application/spdx+json", "application/vnd.in-toto+json"]
    );
    assert_eq!(
        syft_crates(&format!("oci-dir:{}", layout.display())),
        listed
    );
}

/// The version the SPDX document `sbom` gives the crate `name`.
fn crate_version(sbom: &[u8], name: &str) -> String {
    json(sbom)["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .and_then(|p| p["versionInfo"].as_str())
        .unwrap()
        .to_owned()
}
