//! ECR lifecycle policies: typed rules that serialize to ECR's JSON and compare semantically (rules by
//! priority, tag lists as sets, the default `expire` action and `days` unit filled in).

use ferroform_core::FieldError;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct LifecyclePolicy {
    #[serde(default)]
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    pub rule_priority: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub selection: Selection,
    #[serde(default)]
    pub action: RuleAction,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TagStatus {
    Tagged,
    Untagged,
    Any,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum CountType {
    ImageCountMoreThan,
    SinceImagePushed,
    SinceImagePulled,
    SinceImageTransitioned,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Selection {
    pub tag_status: TagStatus,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tag_prefix_list: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tag_pattern_list: Vec<String>,
    pub count_type: CountType,
    /// `days`, for the `since...` count types.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count_unit: Option<String>,
    pub count_number: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleAction {
    /// `expire` (or `transition`, to archive storage).
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(rename = "targetStorageClass", default, skip_serializing_if = "Option::is_none")]
    pub target_storage_class: Option<String>,
}

impl Default for RuleAction {
    fn default() -> Self {
        Self { kind: "expire".into(), target_storage_class: None }
    }
}

impl LifecyclePolicy {
    /// No rules: declares that the repository has no lifecycle policy (removing one made elsewhere).
    pub fn none() -> Self {
        Self::default()
    }

    /// Keeps the `n` most recent images, whatever their tags.
    pub fn keep_last(n: i64) -> Self {
        Self::default()
            .rule(Rule::new(format!("keep the last {n} images"), Selection::new(TagStatus::Any, CountType::ImageCountMoreThan, n)))
    }

    /// Adds a rule expiring untagged images `days` after they were pushed.
    pub fn expire_untagged_after_days(self, days: i64) -> Self {
        self.rule(Rule::new(
            format!("expire untagged images after {days} days"),
            Selection::new(TagStatus::Untagged, CountType::SinceImagePushed, days),
        ))
    }

    /// Adds a rule and renumbers the priorities: rules in the order given, those for `any` tag status last
    /// (ECR requires it).
    pub fn rule(mut self, rule: Rule) -> Self {
        self.rules.push(rule);
        self.rules.sort_by_key(|r| r.selection.tag_status == TagStatus::Any);
        for (i, r) in self.rules.iter_mut().enumerate() {
            r.rule_priority = i32::try_from(i + 1).unwrap_or(i32::MAX);
        }
        self
    }

    pub fn from_json(text: &str) -> Result<Self, String> {
        serde_json::from_str(text).map_err(|e| format!("not an ECR lifecycle policy: {e}"))
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{}"))
    }

    /// The canonical form: see the module documentation.
    pub fn normalize(&mut self) {
        self.rules.sort_by_key(|r| r.rule_priority);
        for r in &mut self.rules {
            let s = &mut r.selection;
            s.tag_prefix_list.sort();
            s.tag_prefix_list.dedup();
            s.tag_pattern_list.sort();
            s.tag_pattern_list.dedup();
            if s.count_type != CountType::ImageCountMoreThan && s.count_unit.is_none() {
                s.count_unit = Some("days".into());
            }
            if r.description.as_deref() == Some("") {
                r.description = None;
            }
        }
    }

    pub fn validate(&self, field: &str, e: &mut Vec<FieldError>) {
        let mut seen = std::collections::BTreeSet::new();
        let any_max = self.rules.iter().filter(|r| r.selection.tag_status == TagStatus::Any).map(|r| r.rule_priority).max();
        if self.rules.iter().filter(|r| r.selection.tag_status == TagStatus::Any).count() > 1 {
            e.push(FieldError::new(field, "at most one rule may select tag status `any`"));
        }
        for r in &self.rules {
            let p = r.rule_priority;
            if p < 1 || !seen.insert(p) {
                e.push(FieldError::new(field, format!("rule priority {p} must be unique and at least 1")));
            }
            if let Some(any) = any_max {
                if r.selection.tag_status != TagStatus::Any && p > any {
                    e.push(FieldError::new(
                        field,
                        format!("rule {p}: the rule for tag status `any` must have the highest priority number"),
                    ));
                }
            }
            let s = &r.selection;
            let has_tags = !s.tag_prefix_list.is_empty() || !s.tag_pattern_list.is_empty();
            match s.tag_status {
                TagStatus::Tagged if !has_tags => {
                    e.push(FieldError::new(field, format!("rule {p}: tag status `tagged` needs tagPrefixList or tagPatternList")))
                }
                TagStatus::Tagged if !s.tag_prefix_list.is_empty() && !s.tag_pattern_list.is_empty() => {
                    e.push(FieldError::new(field, format!("rule {p}: give tagPrefixList or tagPatternList, not both")))
                }
                TagStatus::Untagged | TagStatus::Any if has_tags => {
                    e.push(FieldError::new(field, format!("rule {p}: tag lists only go with tag status `tagged`")))
                }
                _ => {}
            }
            match (s.count_type, s.count_unit.as_deref()) {
                (CountType::ImageCountMoreThan, Some(_)) => {
                    e.push(FieldError::new(field, format!("rule {p}: imageCountMoreThan takes no countUnit")))
                }
                (CountType::ImageCountMoreThan, None) | (_, None | Some("days")) => {}
                (_, Some(u)) => e.push(FieldError::new(field, format!("rule {p}: countUnit `{u}` is not `days`"))),
            }
            if s.count_number < 1 {
                e.push(FieldError::new(field, format!("rule {p}: countNumber must be at least 1")));
            }
        }
    }
}

impl Rule {
    /// A rule (priority set when added to a policy) that expires what `selection` picks.
    pub fn new(description: impl Into<String>, selection: Selection) -> Self {
        Self { rule_priority: 0, description: Some(description.into()), selection, action: RuleAction::default() }
    }
}

impl Selection {
    pub fn new(tag_status: TagStatus, count_type: CountType, count_number: i64) -> Self {
        let count_unit = (count_type != CountType::ImageCountMoreThan).then(|| "days".to_string());
        Self { tag_status, tag_prefix_list: Vec::new(), tag_pattern_list: Vec::new(), count_type, count_unit, count_number }
    }
    /// Images with a tag starting with one of these (tag status becomes `tagged`).
    pub fn tag_prefixes<S: Into<String>>(mut self, prefixes: impl IntoIterator<Item = S>) -> Self {
        self.tag_status = TagStatus::Tagged;
        self.tag_prefix_list.extend(prefixes.into_iter().map(Into::into));
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_last_is_ecr_json() {
        let v: serde_json::Value = serde_json::from_str(&LifecyclePolicy::keep_last(10).to_json()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"rules": [{"rulePriority": 1, "description": "keep the last 10 images",
                "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 10},
                "action": {"type": "expire"}}]})
        );
    }

    #[test]
    fn any_rules_go_last_and_validate() {
        let p = LifecyclePolicy::keep_last(10).expire_untagged_after_days(7);
        assert_eq!(p.rules[0].selection.tag_status, TagStatus::Untagged);
        assert_eq!(p.rules[1].rule_priority, 2);
        let mut e = Vec::new();
        p.validate("lifecycle_policy", &mut e);
        assert!(e.is_empty(), "{e:?}");
        let mut bad = p.clone();
        bad.rules[0].rule_priority = 3;
        bad.validate("lifecycle_policy", &mut e);
        assert_eq!(e.len(), 1, "{e:?}");
        e.clear();
        let tagged = Rule::new("x", Selection::new(TagStatus::Tagged, CountType::ImageCountMoreThan, 0));
        LifecyclePolicy::none().rule(tagged).validate("lifecycle_policy", &mut e);
        assert_eq!(e.len(), 2, "{e:?}");
    }

    #[test]
    fn equivalent_texts_normalize_equal() {
        let mut a = LifecyclePolicy::from_json(
            r#"{"rules":[{"rulePriority":2,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":5},"action":{"type":"expire"}},
                {"rulePriority":1,"selection":{"tagStatus":"tagged","tagPrefixList":["v","prod"],"countType":"sinceImagePushed","countNumber":3}}]}"#,
        )
        .unwrap();
        let mut b = LifecyclePolicy::from_json(
            r#"{"rules":[{"rulePriority":1,"selection":{"countNumber":3,"countType":"sinceImagePushed","countUnit":"days","tagPrefixList":["prod","v"],"tagStatus":"tagged"},"action":{"type":"expire"}},
                {"rulePriority":2,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":5}}]}"#,
        )
        .unwrap();
        assert_ne!(a, b);
        a.normalize();
        b.normalize();
        assert_eq!(a, b);
    }
}
