//! Refuses configurations in which two environments can give the same tag: equal latest tags,
//! formats whose tags overlap, a latest tag that another environment's format can produce, or a
//! format that can produce a lookup tag. Each tag format is read as a small automaton over the
//! tag alphabet (what each placeholder can render to), and two of them collide when their
//! intersection accepts something. Only formats whose leading text is compatible are compared,
//! so loading stays near-linear in the number of environments.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use super::Config;
use crate::environment::{Environment, Latest, TagSelector};
use crate::error::Error;
use crate::tags::{Part, Placeholder, sanitise};

/// A set of ASCII bytes.
type Bytes = u128;

fn bytes_of(pred: impl Fn(u8) -> bool) -> Bytes {
    (0u8..128)
        .filter(|b| pred(*b))
        .fold(0, |set, b| set | 1 << b)
}

fn byte(b: u8) -> Bytes {
    1 << b
}

/// One piece of a tag's shape.
enum Shape {
    /// `min` or more bytes of the set (`max` of them at most).
    Run {
        set: Bytes,
        min: usize,
        max: Option<usize>,
    },
    /// The pieces, or nothing.
    Optional(Vec<Shape>),
}

fn literal(text: &str) -> Vec<Shape> {
    text.bytes()
        .map(|b| Shape::Run {
            set: byte(b),
            min: 1,
            max: Some(1),
        })
        .collect()
}

fn run(set: Bytes, min: usize, max: Option<usize>) -> Shape {
    Shape::Run { set, min, max }
}

/// What `{version}` renders to for an environment: SemVer with `+` as `_`.
fn version_shape(selector: Option<&TagSelector>) -> Vec<Shape> {
    let digits = bytes_of(|b| b.is_ascii_digit());
    let ident = bytes_of(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    let mut shape = vec![run(digits, 1, None)];
    shape.extend(literal("."));
    shape.push(run(digits, 1, None));
    shape.extend(literal("."));
    shape.push(run(digits, 1, None));
    match selector {
        Some(TagSelector::SemverStable) => {}
        Some(TagSelector::SemverChannel(channel)) => {
            shape.extend(literal(&format!("-{channel}")));
            shape.push(run(ident, 0, None));
        }
        _ => {
            let mut pre = literal("-");
            pre.push(run(ident, 1, None));
            shape.push(Shape::Optional(pre));
        }
    }
    let mut build = literal("_");
    build.push(run(ident, 1, None));
    shape.push(Shape::Optional(build));
    shape
}

fn shape_of(parts: &[Part], env: &Environment, suffix: &str) -> Vec<Shape> {
    let hex = bytes_of(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let tag_byte = bytes_of(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    let mut shape = Vec::new();
    for part in parts {
        match part {
            Part::Literal(text) => shape.extend(literal(text)),
            Part::Placeholder(p) => match p {
                Placeholder::Sha => shape.push(run(hex, 7, Some(7))),
                Placeholder::Sha40 => shape.push(run(hex, 40, Some(40))),
                Placeholder::Timestamp => {
                    shape.push(run(bytes_of(|b| b.is_ascii_digit()), 10, Some(10)))
                }
                Placeholder::Branch | Placeholder::Name => shape.push(run(tag_byte, 1, None)),
                Placeholder::Version => shape.extend(version_shape(env.tags.as_ref())),
                Placeholder::Env => shape.extend(literal(&sanitise(&env.name))),
            },
        }
    }
    shape.extend(literal(suffix));
    shape
}

/// A nondeterministic automaton: byte-set moves and empty moves, one start, one end.
#[derive(Default)]
struct Automaton {
    moves: Vec<Vec<(Bytes, usize)>>,
    empty: Vec<Vec<usize>>,
}

impl Automaton {
    fn from_shape(shape: &[Shape]) -> (Automaton, usize) {
        let mut automaton = Automaton::default();
        let start = automaton.state();
        let end = automaton.add(shape, start);
        (automaton, end)
    }

    fn state(&mut self) -> usize {
        self.moves.push(Vec::new());
        self.empty.push(Vec::new());
        self.moves.len() - 1
    }

    fn add(&mut self, shape: &[Shape], mut at: usize) -> usize {
        for piece in shape {
            match piece {
                Shape::Run { set, min, max } => {
                    for _ in 0..*min {
                        let next = self.state();
                        self.moves[at].push((*set, next));
                        at = next;
                    }
                    match max {
                        None => self.moves[at].push((*set, at)),
                        Some(max) => {
                            let end = self.state();
                            for _ in *min..*max {
                                self.empty[at].push(end);
                                let next = self.state();
                                self.moves[at].push((*set, next));
                                at = next;
                            }
                            self.empty[at].push(end);
                            at = end;
                        }
                    }
                }
                Shape::Optional(inner) => {
                    let end = self.state();
                    self.empty[at].push(end);
                    let inner_end = self.add(inner, at);
                    self.empty[inner_end].push(end);
                    at = end;
                }
            }
        }
        at
    }

    fn closure(&self, state: usize) -> Vec<usize> {
        let mut seen = vec![state];
        let mut i = 0;
        while i < seen.len() {
            for next in &self.empty[seen[i]] {
                if !seen.contains(next) {
                    seen.push(*next);
                }
            }
            i += 1;
        }
        seen
    }
}

/// Whether some tag has both shapes.
fn overlap(a: &[Shape], b: &[Shape]) -> bool {
    let ((left, left_end), (right, right_end)) =
        (Automaton::from_shape(a), Automaton::from_shape(b));
    let mut seen = HashSet::from([(0, 0)]);
    let mut queue = vec![(0, 0)];
    while let Some((l, r)) = queue.pop() {
        let (lc, rc) = (left.closure(l), right.closure(r));
        if lc.contains(&left_end) && rc.contains(&right_end) {
            return true;
        }
        for ls in &lc {
            for (lset, lnext) in &left.moves[*ls] {
                for rs in &rc {
                    for (rset, rnext) in &right.moves[*rs] {
                        if lset & rset != 0 && seen.insert((*lnext, *rnext)) {
                            queue.push((*lnext, *rnext));
                        }
                    }
                }
            }
        }
    }
    false
}

/// One kind of tag an environment pushes.
struct Pattern<'c> {
    /// The environment's place in the configuration, so messages name them in that order.
    position: usize,
    environment: &'c str,
    description: String,
    repository: Option<String>,
    shape: Vec<Shape>,
    lead: Vec<u8>,
}

fn patterns(config: &Config) -> Vec<Pattern<'_>> {
    let mut patterns = Vec::new();
    for (position, env) in config.environments.iter().enumerate() {
        let repository = config.image_for(Some(env));
        let mut push = |description: String, shape: Vec<Shape>| {
            let lead = shape
                .iter()
                .map_while(|piece| match piece {
                    Shape::Run {
                        set,
                        min: 1,
                        max: Some(1),
                    } if set.count_ones() == 1 => Some(set.trailing_zeros() as u8),
                    _ => None,
                })
                .collect();
            patterns.push(Pattern {
                position,
                environment: &env.name,
                description,
                repository: repository.clone(),
                shape,
                lead,
            });
        };
        push(
            format!("tags `{}`", env.format),
            shape_of(env.format.parts(), env, ""),
        );
        match &env.latest {
            Latest::Off => {}
            Latest::FromFormat => push(
                format!("latest tag of `{}`", env.format),
                shape_of(env.format.latest_parts(), env, "latest"),
            ),
            Latest::Format(format) => push(
                format!("latest tag `{format}`"),
                shape_of(format.parts(), env, ""),
            ),
        }
    }
    patterns
}

/// Refuses, naming both environments, when two of them can push the same tag to one
/// repository, or when an environment can push something that reads as a lookup tag.
pub fn check(config: &Config, file: &Path, key: &dyn Fn(&str) -> String) -> Result<(), Error> {
    let refuse = |message: String| Error::Config {
        file: file.to_path_buf(),
        line: None,
        key: key("environments"),
        message,
    };
    let patterns = patterns(config);
    let hex = bytes_of(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let mut lookup = literal("commit-");
    lookup.push(run(hex, 40, Some(40)));
    let mut args_hash = literal("-");
    args_hash.push(run(hex, 8, Some(8)));
    lookup.push(Shape::Optional(args_hash));
    let mut by_lead: HashMap<&[u8], Vec<usize>> = HashMap::new();
    for (index, pattern) in patterns.iter().enumerate() {
        let near_lookup =
            b"commit-".starts_with(&pattern.lead) || pattern.lead.starts_with(b"commit-");
        if near_lookup && overlap(&pattern.shape, &lookup) {
            return Err(refuse(format!(
                "environment `{}`'s {} can be a lookup tag `commit-<sha40>`, which must name one commit only; give it another prefix",
                pattern.environment, pattern.description
            )));
        }
        by_lead.entry(&pattern.lead).or_default().push(index);
    }
    for (index, pattern) in patterns.iter().enumerate() {
        for cut in 0..=pattern.lead.len() {
            for &other_index in by_lead.get(&pattern.lead[..cut]).into_iter().flatten() {
                // Each pair once: from the longer lead, or from the later of two equal ones.
                if cut == pattern.lead.len() && other_index >= index {
                    continue;
                }
                let other = &patterns[other_index];
                if other.repository == pattern.repository && overlap(&pattern.shape, &other.shape) {
                    let (first, second) = if other.position <= pattern.position {
                        (other, pattern)
                    } else {
                        (pattern, other)
                    };
                    return Err(refuse(collision_message(first, second)));
                }
            }
        }
    }
    Ok(())
}

fn collision_message(a: &Pattern<'_>, b: &Pattern<'_>) -> String {
    if a.environment == b.environment {
        return format!(
            "environment `{}`'s {} and its {} can be the same tag; change one of them",
            a.environment, a.description, b.description
        );
    }
    format!(
        "environments `{}` and `{}` can push the same tag (`{}`'s {} and `{}`'s {}), so one would move the other's; give one of them a prefix of its own",
        a.environment, b.environment, a.environment, a.description, b.environment, b.description
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tags::TagFormat;

    fn format(text: &str) -> TagFormat {
        text.parse().unwrap()
    }

    fn env(name: &str, text: &str, tags: Option<TagSelector>) -> Environment {
        Environment {
            name: name.to_owned(),
            branches: Vec::new(),
            tags,
            format: format(text),
            latest: Latest::FromFormat,
            build_args: Default::default(),
            image: None,
            exclude_branches: Vec::new(),
        }
    }

    fn collide(a: &Environment, b: &Environment) -> bool {
        overlap(
            &shape_of(a.format.parts(), a, ""),
            &shape_of(b.format.parts(), b, ""),
        )
    }

    #[test]
    fn overlapping_formats_are_found() {
        let stable = Some(TagSelector::SemverStable);
        let alpha = Some(TagSelector::SemverChannel("alpha".into()));
        let beta = Some(TagSelector::SemverChannel("beta".into()));
        // The defaults share `prd-{version}` but their versions never meet.
        assert!(!collide(
            &env("p", "prd-{version}", stable.clone()),
            &env("a", "prd-{version}", alpha.clone())
        ));
        assert!(!collide(
            &env("a", "prd-{version}", alpha),
            &env("b", "prd-{version}", beta)
        ));
        assert!(!collide(
            &env("s", "stg-{sha}-{timestamp}", None),
            &env("d", "dev-{branch}-{sha}-{timestamp}", None)
        ));
        // A branch can hold anything another environment's fixed text does.
        assert!(collide(
            &env("s", "stg-{sha}-{timestamp}", None),
            &env("d", "{branch}-{sha}-{timestamp}", None)
        ));
        assert!(collide(
            &env("x", "a-{sha}-{timestamp}", None),
            &env("y", "a-{sha}-{timestamp}", None)
        ));
        assert!(!collide(
            &env("x", "a-{sha}-{timestamp}", None),
            &env("y", "a-{sha40}-{timestamp}", None)
        ));
        // Two stable versions with different literal prefixes that a version cannot bridge.
        assert!(!collide(
            &env("x", "v{version}", stable.clone()),
            &env("y", "v1{sha}-{timestamp}", None)
        ));
        assert!(collide(
            &env("x", "r-{version}", stable),
            &env("y", "r-1.2.3", None)
        ));
    }
}
