//! Property tests of branch tags through the library: whatever a branch is called (any Unicode,
//! `/`, spaces, control characters, up to 300 characters), the default environments give tags
//! that Docker accepts, that keep the whole `-<sha7>-<timestamp>` suffix, that follow the
//! README's rule for the branch part, and that no two distinct branches share.

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

/// The README's rule for the branch part, before any cut: a name of `[A-Za-z0-9_.-/]` that
/// starts with a letter, digit or `_`, has no `--`, `-/`, `/-`, `//`, does not end with `/` and
/// does not end like `-<8 hex>` reads as itself with `/` written `--`; any other name is
/// sanitised and followed by `-` and 8 hex of its sha256 (the hash alone if nothing is left).
fn reference_part(name: &str) -> (String, bool) {
    let readable_text = name.replace('/', "--");
    let ends_like_hash = readable_text.len() > 8
        && readable_text.as_bytes()[readable_text.len() - 9] == b'-'
        && readable_text[readable_text.len() - 8..]
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    let readable = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/'))
        && !["--", "-/", "/-", "//"].iter().any(|s| name.contains(s))
        && !name.ends_with('/')
        && !ends_like_hash;
    if readable {
        (readable_text, false)
    } else {
        (reference_sanitise(name), true)
    }
}

fn hash8(name: &str) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(name.as_bytes())[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Checks one branch part (`kept`) against the rule, with `room` characters available.
fn check_part(name: &str, kept: &str, room: usize) -> Result<(), TestCaseError> {
    let (text, hashed) = reference_part(name);
    if !hashed && text.len() <= room {
        prop_assert_eq!(kept, text.as_str(), "{:?}", name);
        return Ok(());
    }
    // Hashed or cut: the (possibly shortened) text, then the hash of the original name.
    let hash = hash8(name);
    if kept == hash {
        return Ok(());
    }
    let cut = kept
        .strip_suffix(&format!("-{hash}"))
        .ok_or_else(|| TestCaseError::fail(format!("{kept:?} lacks the hash of {name:?}")))?;
    prop_assert!(
        text.starts_with(cut),
        "{:?} is not a prefix of {:?}",
        cut,
        text
    );
    prop_assert!(kept.len() <= room);
    Ok(())
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

        // The branch part follows the README's rule, shortened only when needed.
        let (prefix, branch_part) = match environment {
            Some("staging") => ("stg-", String::new()),
            // `{name}` is what follows `test/`, or the whole branch when nothing does.
            Some("testing") => {
                let rest = &name["test/".len()..];
                ("tst-", if rest.is_empty() { name.clone() } else { rest.to_owned() })
            }
            Some("development") => ("dev-", name.clone()),
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
            check_part(&branch_part, kept, 128 - prefix.len() - suffix.len())?;
            let kept_latest = latest
                .strip_prefix(prefix)
                .and_then(|rest| rest.strip_suffix("-latest"))
                .expect("prefix and suffix are there");
            check_part(&branch_part, kept_latest, 128 - prefix.len() - "-latest".len())?;
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 1024,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/tags_prop.txt",
        ))),
        ..ProptestConfig::default()
    })]

    /// Distinct development branches never share a tag, nor a latest tag.
    #[test]
    fn distinct_branches_never_share_a_tag(
        a in branch_name(),
        edit in "[/#._ a-]{1,3}",
        at in 0usize..300,
    ) {
        // The second name is the first with a few confusable characters put in: the cases
        // sanitising alone would merge.
        let cut = a.char_indices().map(|(i, _)| i).nth(at).unwrap_or(a.len());
        let b = format!("{}{edit}{}", &a[..cut], &a[cut..]);
        let tags_of = |name: &str| {
            deployment_for(&Config::defaults(), &GitRef::Branch(name.to_owned()), SHA, 1_654_880_868)
                .map(|d| (d.environment, d.tags))
                .expect("every branch name renders")
        };
        let (env_a, tags_a) = tags_of(&a);
        let (env_b, tags_b) = tags_of(&b);
        if env_a == env_b && a != b {
            prop_assert_ne!(&tags_a[0], &tags_b[0], "{:?} and {:?}", a, b);
            prop_assert_ne!(&tags_a[1], &tags_b[1], "{:?} and {:?}", a, b);
        }
    }
}

const SHA: &str = "b4b9fda0123456789abcdef0123456789abcdef0";
