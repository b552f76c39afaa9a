//! Property test of branch tags through the library: whatever a branch is called (any Unicode,
//! `/`, spaces, control characters, up to 300 characters), the default environments give tags
//! that Docker accepts, that keep the whole `-<sha7>-<timestamp>` suffix, and that depend only
//! on the input.

use cargo_gitops::config::Config;
use cargo_gitops::deployment::deployment_for;
use cargo_gitops::environment::GitRef;
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

/// Docker's tag grammar, written out independently of the library.
fn is_docker_tag(tag: &str) -> bool {
    let mut bytes = tag.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_');
    first_ok
        && tag.len() <= 128
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// The design's sanitising rule, written out independently: each run of characters outside
/// `[A-Za-z0-9_.-]` becomes one `-`, then leading `.` and `-` are dropped.
fn reference_sanitise(name: &str) -> String {
    let mut out = String::new();
    let mut previous_replaced = false;
    for c in name.chars() {
        let allowed = c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
        if allowed {
            out.push(c);
        } else if !previous_replaced {
            out.push('-');
        }
        previous_replaced = !allowed;
    }
    out.trim_start_matches(['.', '-']).to_owned()
}

/// Branch names: arbitrary Unicode, and text dense in the characters that matter here.
fn branch_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::collection::vec(any::<char>(), 0..=300).prop_map(String::from_iter),
        "[a-zA-Z0-9/._#@ \t\n\u{0}\u{7f}éü日-]{0,300}",
        "(test/|feature/|main|-|\\.)[a-zA-Z0-9/._ é-]{0,295}",
        Just("main".to_owned()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 1024,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/tags_prop.txt",
        ))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn branch_tags_are_valid_bounded_and_deterministic(
        name in branch_name(),
        sha in "[0-9a-f]{40}",
        timestamp in 1_000_000_000u64..=9_999_999_999,
    ) {
        let config = Config::defaults();
        let git_ref = GitRef::Branch(name.clone());
        let deployment = deployment_for(&config, &git_ref, &sha, timestamp)
            .expect("every branch name renders");

        // The same input gives the same output.
        let again = deployment_for(&Config::defaults(), &git_ref, &sha, timestamp).unwrap();
        prop_assert_eq!(&deployment, &again);

        // `**` tracks every branch, so some environment always does.
        let environment = deployment.environment.as_deref();
        prop_assert!(environment.is_some(), "no environment for {:?}", name);
        prop_assert_eq!(deployment.tags.len(), 2);
        for tag in &deployment.tags {
            prop_assert!(is_docker_tag(tag), "invalid tag {:?} for {:?}", tag, name);
            prop_assert!(tag.len() <= 128);
        }

        let suffix = format!("-{}-{timestamp}", &sha[..7]);
        let primary = &deployment.tags[0];
        let latest = &deployment.tags[1];
        prop_assert!(primary.ends_with(&suffix), "{:?} lost {:?}", primary, suffix);
        prop_assert!(latest.ends_with("-latest"), "{:?}", latest);

        // The branch part is the sanitised name, shortened from the end only when needed.
        let (prefix, part) = match environment {
            Some("staging") => ("stg-", String::new()),
            // `{name}` is what follows `test/`, or the whole branch when nothing does.
            Some("testing") => {
                let rest = &name["test/".len()..];
                ("tst-", reference_sanitise(if rest.is_empty() { &name } else { rest }))
            }
            Some("development") => ("dev-", reference_sanitise(&name)),
            other => panic!("unexpected environment {other:?} for {name:?}"),
        };
        if environment == Some("staging") {
            prop_assert_eq!(&name, "main");
            prop_assert_eq!(primary, &format!("stg{suffix}"));
            prop_assert_eq!(latest, "stg-latest");
        } else {
            let kept = primary
                .strip_prefix(prefix)
                .and_then(|rest| rest.strip_suffix(&suffix))
                .expect("prefix and suffix are there");
            prop_assert!(part.starts_with(kept), "{:?} is not a prefix of {:?}", kept, part);
            let full_len = prefix.len() + part.len() + suffix.len();
            if full_len <= 128 {
                prop_assert_eq!(kept, part.as_str());
            } else {
                prop_assert_eq!(primary.len(), 128);
            }
            let kept_latest = latest
                .strip_prefix(prefix)
                .and_then(|rest| rest.strip_suffix("-latest"))
                .expect("prefix and suffix are there");
            prop_assert!(part.starts_with(kept_latest));
            if prefix.len() + part.len() + "-latest".len() <= 128 {
                prop_assert_eq!(kept_latest, part.as_str());
            } else {
                prop_assert_eq!(latest.len(), 128);
            }
        }
    }
}
