//! Where the plan comes from, and parsing it.

use super::{Plan, PlanError, validate};
use std::path::PathBuf;

/// Environment variable holding the plan as inline JSON (small plans, local runs).
pub const PLAN_ENV: &str = "LIFEBOAT_PLAN";
/// Environment variable holding a path to the plan file.
pub const PLAN_PATH_ENV: &str = "LIFEBOAT_PLAN_PATH";
/// Environment variable holding `s3://bucket/key` of the plan: the deployed form, since
/// Lambda's environment variables total at most 4 KB.
pub const PLAN_S3_ENV: &str = "LIFEBOAT_PLAN_S3_URI";

/// Where to read the plan from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanSource {
    /// The JSON itself.
    Inline(String),
    /// A file.
    Path(PathBuf),
    /// An S3 object, read once per cold start.
    S3 {
        /// The bucket.
        bucket: String,
        /// The object key.
        key: String,
    },
}

impl PlanSource {
    /// Pick the source from configuration read through `lookup` (the process environment
    /// in a function, anything in a test). Exactly one of the three variables must be set.
    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, PlanError> {
        let set = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let found: Vec<(&str, String)> = [PLAN_ENV, PLAN_PATH_ENV, PLAN_S3_ENV]
            .into_iter()
            .filter_map(|name| set(name).map(|v| (name, v)))
            .collect();
        match found.as_slice() {
            [] => Err(PlanError::Unreadable {
                source_name: "the environment".into(),
                reason: format!("none of {PLAN_ENV}, {PLAN_PATH_ENV} or {PLAN_S3_ENV} is set"),
                fix: format!(
                    "set {PLAN_PATH_ENV} to a plan file (e.g. infra/plans/local.json) or {PLAN_S3_ENV} to s3://bucket/key"
                ),
            }),
            [(name, value)] => match *name {
                PLAN_ENV => Ok(PlanSource::Inline(value.clone())),
                PLAN_PATH_ENV => Ok(PlanSource::Path(PathBuf::from(value))),
                _ => parse_s3_uri(value),
            },
            many => Err(PlanError::Unreadable {
                source_name: "the environment".into(),
                reason: format!(
                    "{} are all set, so which plan applies is ambiguous",
                    many.iter()
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(" and ")
                ),
                fix: "set exactly one of them".into(),
            }),
        }
    }

    /// A short description for messages ("LIFEBOAT_PLAN", a path, an S3 URI).
    pub fn describe(&self) -> String {
        match self {
            PlanSource::Inline(_) => PLAN_ENV.to_string(),
            PlanSource::Path(p) => p.display().to_string(),
            PlanSource::S3 { bucket, key } => format!("s3://{bucket}/{key}"),
        }
    }
}

fn parse_s3_uri(value: &str) -> Result<PlanSource, PlanError> {
    let bad = || PlanError::Unreadable {
        source_name: PLAN_S3_ENV.into(),
        reason: format!("{value:?} is not an s3://bucket/key URI"),
        fix: "use the form s3://my-bucket/plans/plan.json".into(),
    };
    let rest = value.strip_prefix("s3://").ok_or_else(bad)?;
    let (bucket, key) = rest.split_once('/').ok_or_else(bad)?;
    if bucket.is_empty() || key.is_empty() {
        return Err(bad());
    }
    Ok(PlanSource::S3 {
        bucket: bucket.to_string(),
        key: key.to_string(),
    })
}

/// Read the plan text of a local source (inline or file). An S3 source is read by the
/// S3 adapter (`crate::aws::load_plan`).
pub fn load_plan_text(source: &PlanSource) -> Result<String, PlanError> {
    match source {
        PlanSource::Inline(text) => Ok(text.clone()),
        PlanSource::Path(path) => {
            std::fs::read_to_string(path).map_err(|e| PlanError::Unreadable {
                source_name: path.display().to_string(),
                reason: e.to_string(),
                fix: format!("check that {PLAN_PATH_ENV} names a readable plan file"),
            })
        }
        PlanSource::S3 { .. } => Err(PlanError::Unreadable {
            source_name: source.describe(),
            reason: "an S3 plan must be read through the S3 client".into(),
            fix: "load it with lifeboat::aws::load_plan".into(),
        }),
    }
}

/// Parse and validate a plan. Unknown fields are rejected; errors name the field's JSON
/// path; a parsed plan that breaks a rule lists every broken rule. The plan comes back
/// with its RDS identifiers lower-cased ([`Plan::normalise_identifiers`]).
pub fn parse_plan(text: &str) -> Result<Plan, PlanError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let plan: Plan = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        PlanError::Malformed {
            path,
            reason: e.into_inner().to_string(),
        }
    })?;
    de.end().map_err(|e| PlanError::Malformed {
        path: ".".into(),
        reason: e.to_string(),
    })?;
    validate::validate(&plan)?;
    // After validation, so that every message quotes the plan as written.
    let mut plan = plan;
    plan.normalise_identifiers();
    Ok(plan)
}
