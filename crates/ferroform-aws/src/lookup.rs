//! What the lookups (Terraform's data sources: `ec2::DefaultVpc`, `ec2::FindSubnets`, `iam::FindRole`, ...)
//! share: the query said in words, and the rule that a lookup answers with exactly one match.

use crate::tags::Tags;
use ferroform_core::ProviderError;

/// A query in words, for errors: `tags env=prod, tier=app; vpc vpc-1`. `parts` are (what, value) pairs; unset
/// ones are left out, and no criteria at all is "any".
pub(crate) fn criteria(tags: &Tags, parts: &[(&str, Option<&str>)]) -> String {
    let mut out = Vec::new();
    if !tags.is_empty() {
        out.push(format!("tags {}", tags.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")));
    }
    out.extend(parts.iter().filter_map(|(what, v)| v.map(|v| format!("{what} {v}"))));
    if out.is_empty() {
        "any (no criteria)".into()
    } else {
        out.join("; ")
    }
}

/// The one match of a search for `what` (`"VPC"`): none is a `NotFound` error saying what was searched, several
/// an error naming every id that matched (sorted).
pub(crate) fn exactly_one<T>(what: &str, searched: &str, mut found: Vec<(String, T)>) -> Result<T, ProviderError> {
    match found.len() {
        0 => Err(ProviderError::with_code("NotFound", format!("no {what} matches {searched}"))),
        1 => Ok(found.remove(0).1),
        n => {
            let mut ids: Vec<String> = found.into_iter().map(|(id, _)| id).collect();
            ids.sort();
            Err(ProviderError::new(format!("{n} {what}s match {searched} ({}); the lookup must match one", ids.join(", ")))
                .hint("narrow the query (more tags, a VPC, a zone), or look up a list where one exists"))
        }
    }
}

/// At least one match for a list lookup (`FindSubnets`): an empty answer is as wrong as a missing VPC, since
/// what uses it (a service's subnets) can't be empty either.
pub(crate) fn at_least_one<T>(what: &str, searched: &str, found: Vec<T>) -> Result<Vec<T>, ProviderError> {
    if found.is_empty() {
        return Err(ProviderError::with_code("NotFound", format!("no {what} matches {searched}")));
    }
    Ok(found)
}

/// True when `live` carries every wanted tag with its value (`*` and `?` in a wanted value are wildcards, as in
/// EC2's tag filters). Checked on our side as well as sent as a filter: some emulators ignore tag filters, and a
/// lookup that matched everything would be silently wrong.
pub(crate) fn has_tags<'a>(wanted: &Tags, live: impl IntoIterator<Item = (Option<&'a str>, Option<&'a str>)>) -> bool {
    let live: Vec<(Option<&str>, Option<&str>)> = live.into_iter().collect();
    wanted.iter().all(|(k, v)| live.iter().any(|(lk, lv)| *lk == Some(k.as_str()) && glob(v, lv.unwrap_or_default())))
}

/// `pattern` matches all of `text`; `*` is any run of characters, `?` any one.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    // Where the last `*` was, and the text position it stands at: on a mismatch it takes one more character.
    let (mut pi, mut ti, mut star): (usize, usize, Option<(usize, usize)>) = (0, 0, None);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> Tags {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn criteria_say_what_was_searched() {
        assert_eq!(
            criteria(&tags(&[("tier", "app"), ("env", "prod")]), &[("vpc", Some("vpc-1")), ("zone", None)]),
            "tags env=prod, tier=app; vpc vpc-1"
        );
        assert_eq!(criteria(&Tags::new(), &[("name", Some("deploy"))]), "name deploy");
        assert_eq!(criteria(&Tags::new(), &[("zone", None)]), "any (no criteria)");
    }

    #[test]
    fn one_match_or_an_error_naming_what_matched() {
        assert_eq!(exactly_one("VPC", "tags env=prod", vec![("vpc-1".to_string(), 7)]).ok(), Some(7));
        let none = exactly_one::<u8>("VPC", "tags env=prod", vec![]).err().map(|e| e.to_string()).unwrap_or_default();
        assert_eq!(none, "NotFound: no VPC matches tags env=prod");
        let many = exactly_one("subnet", "tags tier=app", vec![("subnet-b".to_string(), 1), ("subnet-a".to_string(), 2)]);
        let many = many.err().map(|e| e.message).unwrap_or_default();
        assert_eq!(many, "2 subnets match tags tier=app (subnet-a, subnet-b); the lookup must match one");
        assert!(at_least_one::<u8>("subnet", "tags tier=app", vec![]).is_err());
        assert_eq!(at_least_one("subnet", "x", vec![1, 2]).ok(), Some(vec![1, 2]));
    }

    #[test]
    fn every_wanted_tag_must_be_there_with_its_value() {
        let live = [(Some("env"), Some("prod")), (Some("tier"), Some("app")), (Some("empty"), None)];
        assert!(has_tags(&tags(&[("env", "prod")]), live));
        assert!(has_tags(&tags(&[("env", "prod"), ("tier", "app"), ("empty", "")]), live));
        assert!(!has_tags(&tags(&[("env", "dev")]), live));
        assert!(!has_tags(&tags(&[("owner", "x")]), live));
        assert!(has_tags(&Tags::new(), live), "no tags wanted: anything matches");
        assert!(has_tags(&tags(&[("env", "pr*")]), live) && has_tags(&tags(&[("tier", "a?p")]), live));
        assert!(!has_tags(&tags(&[("env", "pr")]), live), "a value is matched whole");
    }

    #[test]
    fn wildcards_as_ec2_filters_have_them() {
        for (p, t) in [("*", ""), ("*", "abc"), ("a*c", "abbbc"), ("a*b*c", "axxbyyc"), ("?b?", "abc"), ("*c", "abcc"), ("abc", "abc")] {
            assert!(glob(p, t), "{p} ~ {t}");
        }
        for (p, t) in [("a*c", "abcd"), ("?", ""), ("abc", "ab"), ("ab", "abc"), ("*x*", "abc")] {
            assert!(!glob(p, t), "{p} !~ {t}");
        }
    }
}
