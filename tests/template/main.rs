//! The CloudFormation templates under `infra/`, read as data: no statement allows a
//! wildcard action, every `Resource: "*"` an Allow statement grants is explained by a
//! comment, and every function has the schedule (and, where it reacts to AWS events,
//! the EventBridge rule) that drives it. `cfn-lint` checks the templates against the
//! CloudFormation schema; this checks Lifeboat's own rules, which no linter knows.

use serde_norway::{Mapping, Value};
use std::path::{Path, PathBuf};

/// Functions that react to AWS events as well as to their schedule, with why.
const EVENT_DRIVEN: &[(&str, &str)] = &[
    (
        "SnapshotFunction",
        "copies a snapshot as soon as RDS reports it",
    ),
    ("FailoverFunction", "starts on the plan's alarms"),
    ("RestoreValidatorFunction", "resumes on RDS instance events"),
    (
        "RecoveryFunction",
        "moves a restore on when RDS reports the recovered database",
    ),
];

fn infra() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra")
}

fn templates() -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = std::fs::read_dir(infra())
        .expect("infra/ is readable")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("template is readable");
            (p.file_name().unwrap().to_string_lossy().into_owned(), text)
        })
        .collect();
    found.sort();
    assert!(
        found.iter().any(|(name, _)| name == "template.yaml"),
        "infra/template.yaml is missing"
    );
    found
}

fn parse(name: &str, text: &str) -> Value {
    serde_norway::from_str(text).unwrap_or_else(|e| panic!("{name} is not YAML: {e}"))
}

/// Strip CloudFormation's short-form tags (`!Sub`, `!Ref`...) so that what they hold
/// is walked like any other value.
fn untag(value: &Value) -> &Value {
    match value {
        Value::Tagged(tagged) => untag(&tagged.value),
        other => other,
    }
}

fn get<'a>(map: &'a Value, key: &str) -> Option<&'a Value> {
    untag(map).as_mapping().and_then(|m| m.get(key)).map(untag)
}

/// Every policy statement anywhere in a document: anything that is a mapping holding
/// `Effect` and `Action`/`NotAction`, under any `Statement` list.
fn statements<'a>(value: &'a Value, found: &mut Vec<&'a Mapping>) {
    match untag(value) {
        Value::Mapping(map) => {
            if let Some(list) = map.get("Statement").map(untag).and_then(Value::as_sequence) {
                for s in list {
                    if let Some(m) = untag(s).as_mapping() {
                        found.push(m);
                    }
                }
            }
            for (_, v) in map {
                statements(v, found);
            }
        }
        Value::Sequence(items) => items.iter().for_each(|v| statements(v, found)),
        _ => {}
    }
}

fn strings(value: &Value) -> Vec<String> {
    match untag(value) {
        Value::String(s) => vec![s.clone()],
        Value::Sequence(items) => items.iter().flat_map(strings).collect(),
        _ => Vec::new(),
    }
}

/// The wildcard actions Allow statements of `doc` grant, as "Sid: action" lines.
fn wildcard_actions(doc: &Value) -> Vec<String> {
    let mut all = Vec::new();
    statements(doc, &mut all);
    let mut bad = Vec::new();
    for s in all {
        let effect = s.get("Effect").map(strings).unwrap_or_default();
        if effect != ["Allow"] {
            continue; // a Deny with a wildcard narrows access; it grants nothing
        }
        let sid = s
            .get("Sid")
            .map(strings)
            .and_then(|v| v.into_iter().next())
            .unwrap_or_else(|| "(no Sid)".into());
        if s.contains_key("NotAction") {
            bad.push(format!(
                "{sid}: NotAction in an Allow grants everything else"
            ));
        }
        for action in s.get("Action").map(strings).unwrap_or_default() {
            if action.contains('*') {
                bad.push(format!("{sid}: {action}"));
            }
        }
    }
    bad
}

/// Allow statements of `text` granting `Resource: "*"` without a comment saying why.
/// Comments do not survive parsing, so this reads the text: a statement starts at a
/// list item whose first key is `Sid` or `Effect`, and runs while lines are indented
/// deeper than its dash; comment lines right above it belong to it.
fn unexplained_star_resources(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut bad = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if !(trimmed.starts_with("- Sid:") || trimmed.starts_with("- Effect:")) {
            i += 1;
            continue;
        }
        let mut end = i + 1;
        while end < lines.len() {
            let l = lines[end];
            let t = l.trim_start();
            if !t.is_empty() && l.len() - t.len() <= indent {
                break;
            }
            end += 1;
        }
        let body = &lines[i..end];
        let allows = body
            .iter()
            .any(|l| l.trim() == "Effect: Allow" || l.trim() == "- Effect: Allow");
        let star = body.iter().any(|l| {
            let t = l.trim();
            t == "Resource: \"*\""
                || t == "Resource: '*'"
                || t == "- \"*\"" && body.iter().any(|b| b.trim() == "Resource:")
        });
        // A comment inside the statement, or right above it, explains it.
        let above = lines[..i]
            .iter()
            .rev()
            .take_while(|l| l.trim_start().starts_with('#'))
            .count();
        let explained = above > 0 || body.iter().any(|l| l.trim_start().starts_with('#'));
        if allows && star && !explained {
            bad.push(format!("line {}: {}", i + 1, trimmed));
        }
        i = end;
    }
    bad
}

/// The event types of each `AWS::Serverless::Function` in `doc`, by logical id.
fn function_triggers(doc: &Value) -> Vec<(String, Vec<String>)> {
    let Some(resources) = get(doc, "Resources").and_then(Value::as_mapping) else {
        return Vec::new();
    };
    resources
        .iter()
        .filter(|(_, r)| {
            get(r, "Type").and_then(Value::as_str) == Some("AWS::Serverless::Function")
        })
        .map(|(id, r)| {
            let kinds = get(r, "Properties")
                .and_then(|p| get(p, "Events"))
                .and_then(Value::as_mapping)
                .map(|events| {
                    events
                        .values()
                        .filter_map(|e| get(e, "Type").and_then(Value::as_str).map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            (id.as_str().unwrap_or_default().to_owned(), kinds)
        })
        .collect()
}

/// What is missing from the triggers of each function: a schedule for all (each one
/// runs or resumes on a clock), an EventBridge rule for those in [`EVENT_DRIVEN`].
fn missing_triggers(doc: &Value) -> Vec<String> {
    let mut bad = Vec::new();
    for (id, kinds) in function_triggers(doc) {
        if !kinds.iter().any(|k| k == "Schedule" || k == "ScheduleV2") {
            bad.push(format!("{id} has no schedule"));
        }
        if let Some((_, why)) = EVENT_DRIVEN.iter().find(|(name, _)| *name == id)
            && !kinds.iter().any(|k| k == "EventBridgeRule")
        {
            bad.push(format!("{id} has no EventBridge rule, but it {why}"));
        }
    }
    bad
}

#[test]
fn no_statement_in_any_template_allows_a_wildcard_action() {
    for (name, text) in templates() {
        let bad = wildcard_actions(&parse(&name, &text));
        assert!(
            bad.is_empty(),
            "{name} allows wildcard actions:\n{}",
            bad.join("\n")
        );
    }
}

#[test]
fn every_resource_star_grant_says_why() {
    for (name, text) in templates() {
        let bad = unexplained_star_resources(&text);
        assert!(
            bad.is_empty(),
            "{name}: Resource \"*\" without a comment explaining why:\n{}",
            bad.join("\n")
        );
    }
}

#[test]
fn every_function_has_its_schedule_and_rules() {
    let text = std::fs::read_to_string(infra().join("template.yaml")).unwrap();
    let doc = parse("template.yaml", &text);
    let functions = function_triggers(&doc);
    assert!(
        functions.len() >= 3,
        "template.yaml declares too few functions: {functions:?}"
    );
    let bad = missing_triggers(&doc);
    assert!(bad.is_empty(), "template.yaml:\n{}", bad.join("\n"));
}

/// Every resource of type `kind` in `doc`, by logical id.
fn resources_of<'a>(doc: &'a Value, kind: &str) -> Vec<(String, &'a Value)> {
    let Some(resources) = get(doc, "Resources").and_then(Value::as_mapping) else {
        return Vec::new();
    };
    resources
        .iter()
        .filter(|(_, r)| get(r, "Type").and_then(Value::as_str) == Some(kind))
        .map(|(id, r)| (id.as_str().unwrap_or_default().to_owned(), r))
        .collect()
}

/// The name of a value's short-form tag (`If` for `!If`), if it has one.
fn tag_of(value: &Value) -> Option<String> {
    match value {
        Value::Tagged(tagged) => Some(tagged.tag.to_string().trim_start_matches('!').to_owned()),
        _ => None,
    }
}

/// A value as the template's parameter defaults make it: `!Ref` of a parameter is its
/// default, `!If` picks by the condition, `!Equals`, `!Not`, `!And`, `!Or` evaluate.
/// Enough for the conditions Lifeboat's templates use; anything else is `None`.
fn evaluate(doc: &Value, value: &Value) -> Option<Value> {
    let inner = untag(value);
    let Some(tag) = tag_of(value) else {
        return Some(inner.clone());
    };
    let args = inner.as_sequence();
    let boolean = |v: bool| Some(Value::Bool(v));
    match tag.as_str() {
        "Ref" => {
            let name = inner.as_str()?;
            let param = get(doc, "Parameters").and_then(|p| get(p, name))?;
            get(param, "Default").cloned()
        }
        "Equals" => {
            let args = args?;
            boolean(evaluate(doc, &args[0])? == evaluate(doc, &args[1])?)
        }
        "Not" => boolean(!evaluate(doc, &args?[0])?.as_bool()?),
        "And" => boolean(
            args?
                .iter()
                .map(|a| evaluate(doc, a).and_then(|v| v.as_bool()))
                .collect::<Option<Vec<bool>>>()?
                .into_iter()
                .all(|b| b),
        ),
        "Or" => boolean(
            args?
                .iter()
                .map(|a| evaluate(doc, a).and_then(|v| v.as_bool()))
                .collect::<Option<Vec<bool>>>()?
                .into_iter()
                .any(|b| b),
        ),
        "If" => {
            let args = args?;
            let name = untag(&args[0]).as_str()?;
            let condition = get(doc, "Conditions").and_then(|c| c.as_mapping()?.get(name))?;
            if evaluate(doc, condition)?.as_bool()? {
                evaluate(doc, &args[1])
            } else {
                evaluate(doc, &args[2])
            }
        }
        _ => None,
    }
}

#[test]
fn every_fis_experiment_template_has_an_alarm_stop_condition() {
    let mut seen = 0;
    for (name, text) in templates() {
        let doc = parse(&name, &text);
        for (id, r) in resources_of(&doc, "AWS::FIS::ExperimentTemplate") {
            seen += 1;
            let stops = get(r, "Properties")
                .and_then(|p| get(p, "StopConditions"))
                .and_then(Value::as_sequence)
                .unwrap_or_else(|| panic!("{name}: {id} has no StopConditions"));
            assert!(!stops.is_empty(), "{name}: {id} has no stop condition");
            for stop in stops {
                assert_eq!(
                    get(stop, "Source").and_then(Value::as_str),
                    Some("aws:cloudwatch:alarm"),
                    "{name}: {id} has a stop condition that is not an alarm (\"none\" stops nothing)"
                );
                assert!(get(stop, "Value").is_some(), "{name}: {id} names no alarm");
            }
        }
    }
    assert!(seen > 0, "no template defines the game-day FIS experiment");
}

#[test]
fn the_game_day_schedule_is_disabled_by_default_and_starts_a_game_day() {
    let text = std::fs::read_to_string(infra().join("template.yaml")).unwrap();
    let doc = parse("template.yaml", &text);
    let schedules = resources_of(&doc, "AWS::Scheduler::Schedule");
    assert!(
        !schedules.is_empty(),
        "template.yaml has no game-day schedule"
    );
    for (id, r) in schedules {
        let props = get(r, "Properties").unwrap();
        let state = props
            .as_mapping()
            .and_then(|m| m.get("State"))
            .and_then(|s| evaluate(&doc, s));
        assert_eq!(
            state.as_ref().and_then(Value::as_str),
            Some("DISABLED"),
            "{id} must be DISABLED with the parameters' defaults"
        );
        let target = get(props, "Target").unwrap();
        let input = target
            .as_mapping()
            .and_then(|m| m.get("Input"))
            .and_then(|i| evaluate(&doc, i))
            .and_then(|i| i.as_str().map(str::to_owned))
            .unwrap_or_else(|| panic!("{id} has no Input"));
        let input: serde_json::Value = serde_json::from_str(&input).unwrap();
        assert_eq!(input["action"], "game-day", "{id}: {input}");
        // What the failover function accepts as a game-day command, not only a look-alike.
        assert!(
            matches!(
                lifeboat::gameday::run::parse_command(&input),
                Ok(Some(lifeboat::gameday::run::GameDayInput::Start(_)))
            ),
            "{id}: {input} is not a game-day command"
        );
    }
}

#[test]
fn game_days_start_the_failback_through_the_failback_function_only() {
    let text = std::fs::read_to_string(infra().join("template.yaml")).unwrap();
    let doc = parse("template.yaml", &text);
    let resources = get(&doc, "Resources").unwrap();
    let failover = get(resources, "FailoverFunction").unwrap();
    let env = get(failover, "Properties")
        .and_then(|p| get(p, "Environment"))
        .and_then(|e| get(e, "Variables"))
        .expect("the failover function has its own environment");
    let failback = get(env, "LIFEBOAT_FAILBACK_FUNCTION").expect("the failback function is named");
    assert!(
        format!("{failback:?}").contains("FailbackFunction"),
        "LIFEBOAT_FAILBACK_FUNCTION is {failback:?}"
    );
    assert!(get(env, "LIFEBOAT_FIS_TEMPLATE_ID").is_some());

    // lambda:InvokeFunction is granted on the failback function and nothing else.
    let mut found = Vec::new();
    statements(resources, &mut found);
    let invokes: Vec<&Mapping> = found
        .into_iter()
        .filter(|st| {
            st.get("Action")
                .map(|a| strings(a).iter().any(|x| x == "lambda:InvokeFunction"))
                .unwrap_or(false)
        })
        .collect();
    let targets: Vec<String> = invokes
        .iter()
        .map(|st| format!("{:?}", st.get("Resource")))
        .collect();
    assert!(
        targets.iter().any(|t| t.contains("FailbackFunction.Arn")),
        "no statement lets a game day start the failback: {targets:?}"
    );
    for t in &targets {
        assert!(
            t.contains("FailbackFunction.Arn") || t.contains("FailoverFunction.Arn"),
            "lambda:InvokeFunction on something else: {t}"
        );
    }
}

// The checks themselves, on templates that break each rule.

const BAD: &str = r#"
Resources:
  Role:
    Type: AWS::IAM::Role
    Properties:
      Policies:
        - PolicyDocument:
            Statement:
              - Sid: TooBroad
                Effect: Allow
                Action: [rds:Describe*, s3:GetObject]
                Resource: "*"
              - Sid: Narrowing
                Effect: Deny
                Action: s3:*
                Resource: !Sub arn:${AWS::Partition}:s3:::b/*
              - Sid: Inverted
                Effect: Allow
                NotAction: iam:PassRole
                # explained, but NotAction is still refused
                Resource: "*"
  Quiet:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Rule:
          Type: EventBridgeRule
  FailoverFunction:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Tick:
          Type: Schedule
"#;

#[test]
fn the_checks_catch_what_they_are_for() {
    let doc = parse("bad", BAD);
    assert_eq!(
        wildcard_actions(&doc),
        [
            "TooBroad: rds:Describe*",
            "Inverted: NotAction in an Allow grants everything else"
        ]
    );
    let stars = unexplained_star_resources(BAD);
    assert_eq!(stars.len(), 1, "{stars:?}");
    assert!(stars[0].contains("TooBroad"), "{stars:?}");
    assert_eq!(
        missing_triggers(&doc),
        [
            "Quiet has no schedule",
            "FailoverFunction has no EventBridge rule, but it starts on the plan's alarms"
        ]
    );
}

/// `!Sub` placeholders replaced by a plain word, as CloudFormation would by values.
fn substituted(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        match rest[start..].find('}') {
            Some(end) => {
                out.push_str("value");
                rest = &rest[start + end + 1..];
            }
            None => {
                rest = &rest[start..];
                break;
            }
        }
    }
    out.push_str(rest);
    out
}

#[test]
fn every_dashboard_body_is_json() {
    let text = std::fs::read_to_string(infra().join("template.yaml")).unwrap();
    let doc = parse("template.yaml", &text);
    let resources = get(&doc, "Resources").and_then(Value::as_mapping).unwrap();
    let mut seen = 0;
    for (id, r) in resources {
        if get(r, "Type").and_then(Value::as_str) != Some("AWS::CloudWatch::Dashboard") {
            continue;
        }
        let body = get(r, "Properties")
            .and_then(|p| get(p, "DashboardBody"))
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("{id:?} has no DashboardBody string"));
        let json: serde_json::Value = serde_json::from_str(&substituted(body))
            .unwrap_or_else(|e| panic!("{id:?}: the dashboard body is not JSON: {e}"));
        assert!(json["widgets"].as_array().is_some_and(|w| !w.is_empty()));
        seen += 1;
    }
    assert!(seen > 0, "template.yaml has no dashboard");
}

// Destructive rights reach only what the plan names.

/// Action verbs that create, change, stop or delete: granted on everything (or on every
/// resource of a type in an account), one of them could take down what Lifeboat protects.
const DESTRUCTIVE_VERBS: &[&str] = &[
    "Delete",
    "Stop",
    "Promote",
    "Restore",
    "Create",
    "Modify",
    "Failover",
    "Switchover",
    "Reboot",
    "Copy",
    "Put",
    "Update",
    "BatchWrite",
    "Change",
    "AddTags",
    "RemoveTags",
    "Tag",
    "Untag",
    "Start",
    "Export",
    "Import",
];

/// The services whose destructive actions must be scoped: the databases, the records, the
/// buckets.
const SCOPED_SERVICES: &[&str] = &["rds", "dynamodb", "route53", "s3"];

fn destructive(action: &str) -> bool {
    let Some((service, name)) = action.split_once(':') else {
        return false;
    };
    SCOPED_SERVICES.contains(&service.to_ascii_lowercase().as_str())
        && DESTRUCTIVE_VERBS.iter().any(|v| name.starts_with(v))
}

/// `${X}` placeholders as `{X}` with no colon inside, so an ARN splits at its own colons.
fn placeholders_flattened(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        match rest[start..].find('}') {
            Some(end) => {
                out.push('{');
                out.push_str(
                    &rest[start + 2..start + end]
                        .replace("::", ".")
                        .replace(':', "."),
                );
                out.push('}');
                rest = &rest[start + end + 1..];
            }
            None => {
                rest = &rest[start..];
                break;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The resource strings a `Resource` value stands for: `!Sub` templates as written,
/// `!Ref`/`!GetAtt` as `{Name}` (a list parameter is one `{Name}`), `!Join` and `!Split`
/// evaluated, both branches of an `!If`.
fn rendered(value: &Value) -> Vec<String> {
    let inner = untag(value);
    let tag = tag_of(value);
    match (tag.as_deref(), inner) {
        (Some("Sub"), Value::String(s)) => vec![placeholders_flattened(s)],
        (Some("Sub"), Value::Sequence(args)) => args.first().map(rendered).unwrap_or_default(),
        (Some("Ref"), Value::String(s)) => vec![format!("{{{s}}}")],
        (Some("GetAtt"), v) => vec![format!("{{{}}}", strings(v).join(".").replace("::", "."))],
        (Some("Join"), Value::Sequence(args)) if args.len() == 2 => {
            let delimiter = untag(&args[0]).as_str().unwrap_or_default().to_string();
            let parts: Vec<String> = match untag(&args[1]) {
                Value::Sequence(items) => items.iter().flat_map(rendered).collect(),
                other => rendered(other),
            };
            vec![parts.join(&delimiter)]
        }
        (Some("Split"), Value::Sequence(args)) if args.len() == 2 => {
            let delimiter = untag(&args[0]).as_str().unwrap_or(",").to_string();
            rendered(&args[1])
                .iter()
                .flat_map(|s| s.split(delimiter.as_str()).map(str::to_string))
                .collect()
        }
        (Some("If"), Value::Sequence(args)) if args.len() == 3 => {
            let mut both = rendered(&args[1]);
            both.extend(rendered(&args[2]));
            both
        }
        (Some(_), _) => vec![format!("{value:?}")],
        (None, Value::String(s)) => vec![placeholders_flattened(s)],
        (None, Value::Sequence(items)) => items.iter().flat_map(rendered).collect(),
        (None, other) => vec![format!("{other:?}")],
    }
}

/// Whether a resource string names everything, or every resource of a type in an
/// account: `*`, `arn:...:db:*`, `arn:...:table/*/backup/*`, `arn:aws:s3:::*`.
fn whole_account(resource: &str) -> bool {
    if resource == "*" {
        return true;
    }
    let parts: Vec<&str> = resource.splitn(6, ':').collect();
    if parts.len() < 6 || parts[0] != "arn" {
        // Not an ARN: a bucket's or a resource's own ARN with a path after it.
        return false;
    }
    let service = parts[2];
    let tokens: Vec<&str> = parts[5].split([':', '/']).collect();
    if service == "s3" {
        return tokens.first().is_none_or(|bucket| *bucket == "*");
    }
    // The first token is the resource type; sub-resource words name no resource.
    tokens.len() > 1
        && tokens[1..]
            .iter()
            .all(|t| *t == "*" || ["backup", "export", "index", "stream"].contains(t))
}

fn sid_of(s: &Mapping) -> String {
    s.get("Sid")
        .map(strings)
        .and_then(|v| v.into_iter().next())
        .unwrap_or_else(|| "(no Sid)".into())
}

/// Condition keys that confine a statement to resources by the tags Lifeboat sets on what
/// it creates (or FIS on its own network ACLs), on the resource or in the request. Keys
/// such as `aws:RequestedRegion` say nothing about which resource, and excuse nothing.
const CONFINING_KEYS: &[&str] = &[
    "aws:ResourceTag/lifeboat:",
    "aws:RequestTag/lifeboat:",
    "ec2:ResourceTag/lifeboat:",
    "aws:ResourceTag/managedByFIS",
    "aws:RequestTag/managedByFIS",
    "ec2:ResourceTag/managedByFIS",
];

/// `(operator, key, values)` of every condition of a statement.
fn conditions(s: &Mapping) -> Vec<(String, String, Vec<String>)> {
    let Some(ops) = s.get("Condition").and_then(|c| untag(c).as_mapping()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (op, keys) in ops {
        let Some(keys) = untag(keys).as_mapping() else {
            continue;
        };
        for (key, values) in keys {
            out.push((
                op.as_str().unwrap_or_default().to_string(),
                key.as_str().unwrap_or_default().to_string(),
                rendered(values),
            ));
        }
    }
    out
}

/// The keys of [`CONFINING_KEYS`] that a statement's conditions require: under an operator
/// that fails when the key is absent (`StringEquals`, `StringLike`; not `...IfExists`,
/// which an untagged resource passes, nor `ForAllValues:`, which a missing key passes), or
/// `Null` false.
fn confining_keys(s: &Mapping) -> Vec<String> {
    conditions(s)
        .into_iter()
        .filter(|(op, key, values)| {
            let requires = match op.as_str() {
                "StringEquals" | "StringLike" => true,
                "Null" => values == &["false"],
                _ => false,
            };
            requires && CONFINING_KEYS.iter().any(|k| key.starts_with(k))
        })
        .map(|(_, key, _)| key)
        .collect()
}

/// Allow statements of `doc` that grant a destructive action on everything, or on a
/// whole account's resources of a type, without a condition confining it to what
/// Lifeboat tagged: "Sid: action on resource".
fn unscoped_destructive_grants(doc: &Value) -> Vec<String> {
    let mut all = Vec::new();
    statements(doc, &mut all);
    let mut bad = Vec::new();
    for s in all {
        if s.get("Effect").map(strings).unwrap_or_default() != ["Allow"]
            || !confining_keys(s).is_empty()
        {
            continue;
        }
        let actions: Vec<String> = s
            .get("Action")
            .map(strings)
            .unwrap_or_default()
            .into_iter()
            .filter(|a| destructive(a))
            .collect();
        if actions.is_empty() {
            continue;
        }
        let resources = s.get("Resource").map(rendered).unwrap_or_default();
        for r in resources.iter().filter(|r| whole_account(r)) {
            for a in &actions {
                bad.push(format!("{}: {a} on {r}", sid_of(s)));
            }
        }
    }
    bad
}

/// Statements granting `route53:ChangeResourceRecordSets` without limiting the records
/// (by name and type) the change may touch.
fn unlimited_record_changes(doc: &Value) -> Vec<String> {
    let mut all = Vec::new();
    statements(doc, &mut all);
    let mut bad = Vec::new();
    for s in all {
        let grants = s
            .get("Action")
            .map(strings)
            .unwrap_or_default()
            .iter()
            .any(|a| a.eq_ignore_ascii_case("route53:ChangeResourceRecordSets"));
        if !grants || s.get("Effect").map(strings).unwrap_or_default() != ["Allow"] {
            continue;
        }
        let keys: Vec<String> = s
            .get("Condition")
            .and_then(|c| untag(c).as_mapping())
            .map(|ops| {
                ops.values()
                    .filter_map(|m| untag(m).as_mapping())
                    .flat_map(|m| m.keys().filter_map(|k| k.as_str().map(str::to_owned)))
                    .collect()
            })
            .unwrap_or_default();
        for needed in [
            "route53:ChangeResourceRecordSetsNormalizedRecordNames",
            "route53:ChangeResourceRecordSetsRecordTypes",
        ] {
            if !keys.iter().any(|k| k == needed) {
                bad.push(format!("{}: no {needed} condition", sid_of(s)));
            }
        }
    }
    bad
}

/// Names Lifeboat gives what it creates: a destructive action on one of them must also
/// require the plan's tag, since a name alone also matches another plan's
/// (`lifeboat-orders-*` covers `lifeboat-orders-eu-*`) or anyone's (`*-pitr-*`).
const LIFEBOAT_NAMES: &[&str] = &["lifeboat-{PlanName}-", "-pitr-", "lbval-"];

/// Allow statements granting a destructive action on a resource named like Lifeboat's
/// without a condition on the plan's tag (`aws:ResourceTag/lifeboat:plan`, `IfExists`
/// allowed for a resource being created; or `aws:RequestTag/lifeboat:plan`) equal to
/// `!Ref PlanName`.
fn untagged_name_grants(doc: &Value) -> Vec<String> {
    let mut all = Vec::new();
    statements(doc, &mut all);
    let mut bad = Vec::new();
    for s in all {
        if s.get("Effect").map(strings).unwrap_or_default() != ["Allow"] {
            continue;
        }
        let actions: Vec<String> = s
            .get("Action")
            .map(strings)
            .unwrap_or_default()
            .into_iter()
            .filter(|a| destructive(a))
            .collect();
        let named: Vec<String> = s
            .get("Resource")
            .map(rendered)
            .unwrap_or_default()
            .into_iter()
            .filter(|r| LIFEBOAT_NAMES.iter().any(|n| r.contains(n)))
            .collect();
        if actions.is_empty() || named.is_empty() {
            continue;
        }
        let tagged = conditions(s).iter().any(|(op, key, values)| {
            let plan = values == &["{PlanName}"];
            match key.as_str() {
                "aws:ResourceTag/lifeboat:plan" => {
                    plan && matches!(op.as_str(), "StringEquals" | "StringEqualsIfExists")
                }
                "aws:RequestTag/lifeboat:plan" => plan && op == "StringEquals",
                _ => false,
            }
        });
        if !tagged {
            for a in &actions {
                bad.push(format!(
                    "{}: {a} on {} without the plan's tag",
                    sid_of(s),
                    named[0]
                ));
            }
        }
    }
    bad
}

/// Allow statements of the FIS role changing EC2 networking without a condition confining
/// them to the plan's tagged subnets or FIS's own ACLs. The one exception: the ACL side of
/// `ReplaceNetworkAclAssociation`, since the swap back names the subnet's original ACL,
/// which nobody tagged; its subnet side must then be confined by the plan's tag.
fn unconfined_network_changes(doc: &Value) -> Vec<String> {
    let mut all = Vec::new();
    statements(doc, &mut all);
    let allows: Vec<&Mapping> = all
        .into_iter()
        .filter(|s| s.get("Effect").map(strings).unwrap_or_default() == ["Allow"])
        .collect();
    let grants = |s: &Mapping, action: &str| {
        s.get("Action")
            .map(strings)
            .unwrap_or_default()
            .iter()
            .any(|a| a == action)
    };
    let resources = |s: &Mapping| s.get("Resource").map(rendered).unwrap_or_default();
    let swap = "ec2:ReplaceNetworkAclAssociation";
    let subnets_confined = allows.iter().any(|s| {
        grants(s, swap)
            && resources(s).iter().all(|r| r.contains(":subnet/"))
            && confining_keys(s)
                .iter()
                .any(|k| k.ends_with("/lifeboat:plan"))
    });
    let mut bad = Vec::new();
    for s in &allows {
        let changes: Vec<String> = s
            .get("Action")
            .map(strings)
            .unwrap_or_default()
            .into_iter()
            .filter(|a| {
                a.strip_prefix("ec2:")
                    .is_some_and(|v| !v.starts_with("Describe") && !v.starts_with("Get"))
            })
            .collect();
        if changes.is_empty() || !confining_keys(s).is_empty() {
            continue;
        }
        let acl_side_of_swap = changes == [swap]
            && resources(s).iter().all(|r| r.contains(":network-acl/"))
            && subnets_confined;
        if !acl_side_of_swap {
            for a in changes {
                bad.push(format!("{}: {a} unconfined", sid_of(s)));
            }
        }
    }
    bad
}

#[test]
fn the_fis_role_changes_only_the_plans_subnets_and_its_own_acls() {
    let text = std::fs::read_to_string(infra().join("primary-region.yaml")).unwrap();
    let doc = parse("primary-region.yaml", &text);
    let bad = unconfined_network_changes(&doc);
    assert!(bad.is_empty(), "primary-region.yaml:\n{}", bad.join("\n"));
}

#[test]
fn no_destructive_action_reaches_a_whole_account() {
    for (name, text) in templates() {
        let doc = parse(&name, &text);
        let bad = unscoped_destructive_grants(&doc);
        assert!(
            bad.is_empty(),
            "{name} grants destructive actions on more than the plan names (scope them by \
             the plan's identifiers or a tag condition):\n{}",
            bad.join("\n")
        );
        let bad = unlimited_record_changes(&doc);
        assert!(
            bad.is_empty(),
            "{name} lets a record change touch any record of the zone:\n{}",
            bad.join("\n")
        );
        let bad = untagged_name_grants(&doc);
        assert!(
            bad.is_empty(),
            "{name} trusts a name alone (add a condition on aws:ResourceTag/lifeboat:plan \
             or aws:RequestTag/lifeboat:plan equal to PlanName):\n{}",
            bad.join("\n")
        );
    }
}

/// The service principals (other than Lambda's) that may assume a role of `doc` with a
/// trust policy missing `aws:SourceAccount` or `aws:SourceArn`, by role.
fn unconfined_service_trusts(doc: &Value) -> Vec<String> {
    let mut bad = Vec::new();
    for (id, role) in resources_of(doc, "AWS::IAM::Role") {
        let Some(trust) = get(role, "Properties").and_then(|p| get(p, "AssumeRolePolicyDocument"))
        else {
            continue;
        };
        let mut all = Vec::new();
        statements(trust, &mut all);
        for s in all {
            let services = s
                .get("Principal")
                .and_then(|p| get(p, "Service"))
                .map(strings)
                .unwrap_or_default();
            // A function's own role is assumed by Lambda for that function alone.
            if services.is_empty() || services.iter().all(|x| x == "lambda.amazonaws.com") {
                continue;
            }
            let keys: Vec<String> = s
                .get("Condition")
                .and_then(|c| untag(c).as_mapping())
                .map(|ops| {
                    ops.values()
                        .filter_map(|m| untag(m).as_mapping())
                        .flat_map(|m| m.keys().filter_map(|k| k.as_str().map(str::to_owned)))
                        .collect()
                })
                .unwrap_or_default();
            for needed in ["aws:SourceAccount", "aws:SourceArn"] {
                if !keys.iter().any(|k| k == needed) {
                    bad.push(format!("{id} ({}): no {needed}", services.join(", ")));
                }
            }
        }
    }
    bad
}

#[test]
fn services_assume_lifeboat_roles_only_for_this_account_and_source() {
    for (name, text) in templates() {
        let bad = unconfined_service_trusts(&parse(&name, &text));
        assert!(
            bad.is_empty(),
            "{name}: a service could assume these roles for another account or resource \
             (the confused deputy):\n{}",
            bad.join("\n")
        );
    }
}

/// The functions whose capacity a busy account must not take: the ones that change the
/// writer (failover, failback, a recovery's cutover).
const RESERVED: &[&str] = &["FailoverFunction", "FailbackFunction", "RecoveryFunction"];

/// Functions without an on-failure destination for asynchronous events, and those of
/// [`RESERVED`] without reserved concurrency.
fn unguarded_functions(doc: &Value) -> Vec<String> {
    let mut bad = Vec::new();
    for (id, f) in resources_of(doc, "AWS::Serverless::Function") {
        let props = get(f, "Properties");
        let destination = props
            .and_then(|p| get(p, "EventInvokeConfig"))
            .and_then(|c| get(c, "DestinationConfig"))
            .and_then(|d| get(d, "OnFailure"));
        let named = destination.is_some_and(|d| {
            get(d, "Destination").is_some()
                && matches!(get(d, "Type").and_then(Value::as_str), Some("SNS" | "SQS"))
        });
        if !named {
            bad.push(format!(
                "{id}: no EventInvokeConfig.DestinationConfig.OnFailure (SNS or SQS)"
            ));
        }
        if RESERVED.contains(&id.as_str())
            && props
                .and_then(|p| untag(p).as_mapping())
                .and_then(|m| m.get("ReservedConcurrentExecutions"))
                .is_none()
        {
            bad.push(format!("{id}: no ReservedConcurrentExecutions"));
        }
    }
    bad
}

#[test]
fn every_function_keeps_its_failed_events_and_the_dr_functions_their_capacity() {
    let text = std::fs::read_to_string(infra().join("template.yaml")).unwrap();
    let doc = parse("template.yaml", &text);
    let bad = unguarded_functions(&doc);
    assert!(bad.is_empty(), "template.yaml:\n{}", bad.join("\n"));
}

const BAD_SCOPES: &str = r#"
Resources:
  Role:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Statement:
          - Effect: Allow
            Principal:
              Service: events.amazonaws.com
            Action: sts:AssumeRole
            Condition:
              StringEquals:
                aws:SourceAccount: "1"
      Policies:
        - PolicyDocument:
            Statement:
              - Sid: AnyInstance
                Effect: Allow
                Action: [rds:DescribeDBInstances, rds:DeleteDBInstance]
                Resource: !Sub arn:${AWS::Partition}:rds:${AWS::Region}:${AWS::AccountId}:db:*
              - Sid: AnyBackup
                Effect: Allow
                Action: dynamodb:DeleteBackup
                Resource: !Sub arn:${AWS::Partition}:dynamodb:*:${AWS::AccountId}:table/*/backup/*
              - Sid: Everything
                Effect: Allow
                Action: route53:ChangeResourceRecordSets
                Resource: "*"
              - Sid: NamedOnes
                Effect: Allow
                Action: rds:StopDBInstance
                Resource: !Split
                  - ","
                  - !Join ["", ["arn:aws:rds:*:*:db:", !Join [",arn:aws:rds:*:*:db:", !Ref Ids]]]
              - Sid: Tagged
                Effect: Allow
                Action: rds:DeleteDBInstance
                Resource: !Sub arn:${AWS::Partition}:rds:${AWS::Region}:${AWS::AccountId}:db:*
                Condition:
                  StringEquals:
                    aws:ResourceTag/lifeboat:plan: p
              - Sid: Reads
                Effect: Allow
                Action: rds:DescribeDBSnapshots
                Resource: "*"
              - Sid: RegionOnly
                Effect: Allow
                Action: rds:DeleteDBCluster
                Resource: !Sub arn:${AWS::Partition}:rds:*:${AWS::AccountId}:cluster:*
                Condition:
                  StringEquals:
                    aws:RequestedRegion: us-east-1
              - Sid: IfTagged
                Effect: Allow
                Action: rds:StopDBCluster
                Resource: !Sub arn:${AWS::Partition}:rds:*:${AWS::AccountId}:cluster:*
                Condition:
                  StringEqualsIfExists:
                    aws:ResourceTag/lifeboat:plan: p
              - Sid: NameOnly
                Effect: Allow
                Action: rds:DeleteDBSnapshot
                Resource: !Sub arn:${AWS::Partition}:rds:*:${AWS::AccountId}:snapshot:lifeboat-${PlanName}-*
              - Sid: OtherPlansTag
                Effect: Allow
                Action: rds:DeleteDBInstance
                Resource: !Sub arn:${AWS::Partition}:rds:*:${AWS::AccountId}:db:${Id}-pitr-*
                Condition:
                  StringEquals:
                    aws:ResourceTag/lifeboat:plan: other
              - Sid: PlansTag
                Effect: Allow
                Action: rds:CopyDBSnapshot
                Resource: !Sub arn:${AWS::Partition}:rds:*:${AWS::AccountId}:snapshot:lifeboat-${PlanName}-*
                Condition:
                  StringEquals:
                    aws:RequestTag/lifeboat:plan: !Ref PlanName
              - Sid: AnyAcl
                Effect: Allow
                Action: ec2:CreateNetworkAclEntry
                Resource: !Sub arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:network-acl/*
              - Sid: SwapAcl
                Effect: Allow
                Action: ec2:ReplaceNetworkAclAssociation
                Resource: !Sub arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:network-acl/*
  Quiet:
    Type: AWS::Serverless::Function
    Properties:
      EventInvokeConfig:
        MaximumRetryAttempts: 0
  FailoverFunction:
    Type: AWS::Serverless::Function
    Properties:
      EventInvokeConfig:
        DestinationConfig:
          OnFailure:
            Type: SNS
            Destination: !Ref Topic
"#;

#[test]
fn the_scope_checks_catch_what_they_are_for() {
    let doc = parse("bad", BAD_SCOPES);
    assert_eq!(
        unscoped_destructive_grants(&doc),
        [
            "AnyInstance: rds:DeleteDBInstance on arn:{AWS.Partition}:rds:{AWS.Region}:{AWS.AccountId}:db:*",
            "AnyBackup: dynamodb:DeleteBackup on arn:{AWS.Partition}:dynamodb:*:{AWS.AccountId}:table/*/backup/*",
            "Everything: route53:ChangeResourceRecordSets on *",
            "RegionOnly: rds:DeleteDBCluster on arn:{AWS.Partition}:rds:*:{AWS.AccountId}:cluster:*",
            "IfTagged: rds:StopDBCluster on arn:{AWS.Partition}:rds:*:{AWS.AccountId}:cluster:*",
        ]
    );
    assert_eq!(
        untagged_name_grants(&doc),
        [
            "NameOnly: rds:DeleteDBSnapshot on arn:{AWS.Partition}:rds:*:{AWS.AccountId}:snapshot:lifeboat-{PlanName}-* without the plan's tag",
            "OtherPlansTag: rds:DeleteDBInstance on arn:{AWS.Partition}:rds:*:{AWS.AccountId}:db:{Id}-pitr-* without the plan's tag",
        ]
    );
    // No subnet statement confined by the plan's tag: the ACL side of a swap is not
    // excused either.
    assert_eq!(
        unconfined_network_changes(&doc),
        [
            "AnyAcl: ec2:CreateNetworkAclEntry unconfined",
            "SwapAcl: ec2:ReplaceNetworkAclAssociation unconfined",
        ]
    );
    assert_eq!(
        unlimited_record_changes(&doc),
        [
            "Everything: no route53:ChangeResourceRecordSetsNormalizedRecordNames condition",
            "Everything: no route53:ChangeResourceRecordSetsRecordTypes condition",
        ]
    );
    assert_eq!(
        unconfined_service_trusts(&doc),
        ["Role (events.amazonaws.com): no aws:SourceArn"]
    );
    assert_eq!(
        unguarded_functions(&doc),
        [
            "Quiet: no EventInvokeConfig.DestinationConfig.OnFailure (SNS or SQS)",
            "FailoverFunction: no ReservedConcurrentExecutions",
        ]
    );
    assert!(whole_account("arn:aws:s3:::*"));
    assert!(!whole_account("arn:aws:s3:::{Bucket}/lifeboat/*"));
    assert!(!whole_account("arn:aws:rds:*:*:db:*-pitr-*"));
    assert!(!whole_account("{ReportBucket.Arn}/{PlanName}/failover/*"));
}

/// `Key="value"` pairs of samconfig.toml's `parameter_overrides`.
fn samconfig_parameters() -> std::collections::BTreeMap<String, String> {
    let text = std::fs::read_to_string(infra().join("samconfig.toml")).unwrap();
    let line = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("parameter_overrides = "))
        .expect("samconfig.toml has parameter_overrides");
    let inner = line
        .trim()
        .strip_prefix('"')
        .and_then(|l| l.strip_suffix('"'))
        .expect("parameter_overrides is one quoted string")
        .replace("\\\"", "\"");
    let mut out = std::collections::BTreeMap::new();
    let mut rest = inner.as_str();
    while let Some((key, after)) = rest.trim_start().split_once("=\"") {
        let (value, tail) = after.split_once('"').expect("a closing quote");
        out.insert(key.trim().to_string(), value.to_string());
        rest = tail;
    }
    out
}

fn listed(value: Option<&String>) -> std::collections::BTreeSet<String> {
    value
        .map(|v| {
            v.split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn the_samconfig_example_scopes_the_roles_to_the_example_plan() {
    use lifeboat::plan::ResourceKind;
    let text = std::fs::read_to_string(infra().join("plans/example.json")).unwrap();
    let plan = lifeboat::plan::parse_plan(&text).expect("the example plan is valid");
    let params = samconfig_parameters();
    let template = parse(
        "template.yaml",
        &std::fs::read_to_string(infra().join("template.yaml")).unwrap(),
    );
    let declared = get(&template, "Parameters")
        .and_then(Value::as_mapping)
        .unwrap();
    for key in params.keys() {
        assert!(
            declared.contains_key(key.as_str()),
            "samconfig.toml sets {key}, which template.yaml does not declare"
        );
    }
    let set = |xs: Vec<String>| xs.into_iter().collect::<std::collections::BTreeSet<_>>();
    // RDS identifiers as RDS stores them, and IAM compares them in ARNs: in lower case,
    // however the plan spells them.
    let databases = set(plan
        .resources
        .iter()
        .filter(|r| r.kind != ResourceKind::DynamodbTable)
        .map(|r| r.aws_identifier().to_ascii_lowercase())
        .collect());
    let replicas = set(plan
        .resources
        .iter()
        .filter_map(|r| {
            r.replica
                .as_ref()
                .map(|x| x.identifier.to_ascii_lowercase())
        })
        .collect());
    let globals = set(plan
        .resources
        .iter()
        .filter_map(|r| {
            r.replica
                .as_ref()
                .and_then(|x| x.global_cluster.as_ref().map(|g| g.to_ascii_lowercase()))
        })
        .collect());
    let tables = set(plan
        .resources
        .iter()
        .filter(|r| r.kind == ResourceKind::DynamodbTable)
        .map(|r| r.aws_identifier().to_string())
        .collect());
    // As Route 53 normalises them: lower case, no trailing dot.
    let normal = |name: &str| name.trim_end_matches('.').to_ascii_lowercase();
    let records = set(plan
        .resources
        .iter()
        .filter_map(|r| r.dns_record.as_deref().map(normal))
        .chain(plan.failback.traffic.iter().map(|t| normal(&t.name)))
        .collect());
    let alarms = set(plan
        .failover
        .health_alarms
        .iter()
        .map(|a| a.name.clone())
        .collect());
    let ids = set(plan.resources.iter().map(|r| r.id.clone()).collect());
    for (key, want) in [
        ("ProtectedResourceIds", ids),
        ("ProtectedDatabaseIds", databases),
        ("ReplicaDatabaseIds", replicas),
        ("GlobalClusterIds", globals),
        ("ProtectedTableNames", tables),
        ("RecordNames", records),
        ("HealthAlarmNames", alarms),
    ] {
        assert_eq!(listed(params.get(key)), want, "samconfig.toml's {key}");
    }
    assert_eq!(params.get("PlanName"), Some(&plan.name));
    assert_eq!(params.get("PrimaryRegion"), Some(&plan.regions.primary));
    assert_eq!(
        params.get("HostedZoneId"),
        plan.dns.hosted_zone_id.as_ref(),
        "samconfig.toml's HostedZoneId"
    );
    assert_eq!(
        params.get("ExportBucketName"),
        plan.snapshots.dynamodb_export_bucket.as_ref(),
        "samconfig.toml's ExportBucketName"
    );
}

/// Whether the statements under `resource` grant `action` on the state table.
fn grants_on_state_table(resource: &Value, action: &str) -> bool {
    let mut found = Vec::new();
    statements(resource, &mut found);
    found.iter().any(|st| {
        st.get("Action")
            .is_some_and(|a| strings(a).iter().any(|x| x == action))
            && format!("{:?}", st.get("Resource")).contains("StateTable")
    })
}

#[test]
fn functions_that_commit_against_an_unchanged_state_may_check_it_in_a_transaction() {
    // A commit is one TransactWriteItems: IAM authorises each of its actions, so a step
    // recording entries against an unchanged state needs ConditionCheckItem besides
    // PutItem; the functions that never do (snapshot, retention) do not get it.
    let text = std::fs::read_to_string(infra().join("template.yaml")).unwrap();
    let doc = parse("template.yaml", &text);
    let resources = get(&doc, "Resources").unwrap();
    for name in [
        "FailoverFunction",
        "FailbackFunction",
        "RecoveryFunction",
        "RestoreValidatorFunction",
    ] {
        let f = get(resources, name).unwrap();
        assert!(grants_on_state_table(f, "dynamodb:PutItem"), "{name}");
        assert!(
            grants_on_state_table(f, "dynamodb:ConditionCheckItem"),
            "{name} cannot check the state's version in a commit"
        );
    }
    for name in ["SnapshotFunction", "RetentionFunction"] {
        let f = get(resources, name).unwrap();
        assert!(grants_on_state_table(f, "dynamodb:PutItem"), "{name}");
        assert!(
            !grants_on_state_table(f, "dynamodb:ConditionCheckItem"),
            "{name} has no use for ConditionCheckItem"
        );
    }
}

/// The Allow statements granted to the role of the function `id`: its own `Policies`,
/// and every `AWS::IAM::Policy` attached to its role (SAM names it `<id>Role`).
fn role_statements<'a>(doc: &'a Value, id: &str) -> Vec<&'a Mapping> {
    let resources = get(doc, "Resources").expect("the template has resources");
    let mut found = Vec::new();
    if let Some(policies) = get(resources, id)
        .and_then(|f| get(f, "Properties"))
        .and_then(|p| get(p, "Policies"))
    {
        statements(policies, &mut found);
    }
    let role = format!("{id}Role");
    for (_, policy) in resources_of(doc, "AWS::IAM::Policy") {
        let props = get(policy, "Properties").expect("a policy has properties");
        if get(props, "Roles").is_some_and(|r| strings(r).contains(&role)) {
            statements(props, &mut found);
        }
    }
    found
        .into_iter()
        .filter(|s| s.get("Effect").map(strings).unwrap_or_default() == ["Allow"])
        .collect()
}

/// Every action the role of the function `id` is granted.
fn role_actions(doc: &Value, id: &str) -> std::collections::BTreeSet<String> {
    role_statements(doc, id)
        .into_iter()
        .flat_map(|s| s.get("Action").map(strings).unwrap_or_default())
        .collect()
}

/// What each function's role may do, and nothing more: each function has one job, and a
/// grant added to the wrong role (a restore on the failover's, an invoke on the
/// readiness's) fails here. Resources and conditions are checked by the tests above.
const ROLE_ACTIONS: &[(&str, &[&str])] = &[
    (
        "ReadinessFunction",
        &[
            "cloudwatch:DescribeAlarms",
            "cloudwatch:GetMetricStatistics",
            "dynamodb:DescribeContinuousBackups",
            "dynamodb:DescribeTable",
            "dynamodb:GetItem",
            "dynamodb:ListBackups",
            "dynamodb:Query",
            "rds:DescribeDBClusterSnapshots",
            "rds:DescribeDBClusters",
            "rds:DescribeDBInstances",
            "rds:DescribeDBSnapshots",
            "rds:DescribeGlobalClusters",
            "route53:ListHostedZonesByName",
            "route53:ListResourceRecordSets",
            "s3:GetObject",
            "s3:PutObject",
            "sts:AssumeRole",
        ],
    ),
    (
        "FailoverFunction",
        &[
            "cloudwatch:DescribeAlarms",
            "cloudwatch:GetMetricStatistics",
            "cloudwatch:SetAlarmState",
            "dynamodb:ConditionCheckItem",
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:Query",
            "dynamodb:UpdateItem",
            "fis:GetExperiment",
            "fis:StartExperiment",
            "fis:StopExperiment",
            "kms:Decrypt",
            "kms:GenerateDataKey",
            "lambda:InvokeFunction",
            "rds:DescribeDBClusters",
            "rds:DescribeDBInstances",
            "rds:DescribeGlobalClusters",
            "rds:FailoverGlobalCluster",
            "rds:PromoteReadReplica",
            "rds:StopDBInstance",
            "route53:ChangeResourceRecordSets",
            "route53:GetChange",
            "route53:ListHostedZonesByName",
            "route53:ListResourceRecordSets",
            "s3:GetObject",
            "s3:ListBucket",
            "s3:PutObject",
            "secretsmanager:GetSecretValue",
            "sns:Publish",
        ],
    ),
    (
        "RecoveryFunction",
        &[
            "dynamodb:BatchWriteItem",
            "dynamodb:ConditionCheckItem",
            "dynamodb:DeleteItem",
            "dynamodb:DeleteTable",
            "dynamodb:DescribeContinuousBackups",
            "dynamodb:DescribeTable",
            "dynamodb:GetItem",
            "dynamodb:ListTagsOfResource",
            "dynamodb:PutItem",
            "dynamodb:Query",
            "dynamodb:RestoreTableToPointInTime",
            "dynamodb:Scan",
            "dynamodb:TagResource",
            "dynamodb:UpdateItem",
            "kms:CreateGrant",
            "kms:Decrypt",
            "kms:DescribeKey",
            "kms:GenerateDataKey",
            "rds:AddTagsToResource",
            "rds:CreateDBInstance",
            "rds:DeleteDBCluster",
            "rds:DeleteDBInstance",
            "rds:DescribeDBClusters",
            "rds:DescribeDBInstanceAutomatedBackups",
            "rds:DescribeDBInstances",
            "rds:DescribeGlobalClusters",
            "rds:RestoreDBClusterToPointInTime",
            "rds:RestoreDBInstanceToPointInTime",
            "rds:StopDBCluster",
            "rds:StopDBInstance",
            "route53:ChangeResourceRecordSets",
            "route53:GetChange",
            "route53:ListHostedZonesByName",
            "route53:ListResourceRecordSets",
            "s3:GetObject",
            "s3:PutObject",
            "secretsmanager:GetSecretValue",
            "sns:Publish",
        ],
    ),
];

#[test]
fn each_function_role_grants_exactly_what_its_job_needs() {
    let text = std::fs::read_to_string(infra().join("template.yaml")).unwrap();
    let doc = parse("template.yaml", &text);
    for (id, expected) in ROLE_ACTIONS {
        let granted = role_actions(&doc, id);
        let expected: std::collections::BTreeSet<String> =
            expected.iter().map(|a| a.to_string()).collect();
        let extra: Vec<&String> = granted.difference(&expected).collect();
        let missing: Vec<&String> = expected.difference(&granted).collect();
        assert!(
            extra.is_empty() && missing.is_empty(),
            "{id}: granted beyond its job: {extra:?}; its job needs but is not granted: {missing:?}"
        );
    }
}

#[test]
fn the_readiness_role_reads_and_writes_only_its_own_report() {
    let text = std::fs::read_to_string(infra().join("template.yaml")).unwrap();
    let doc = parse("template.yaml", &text);
    let statements = role_statements(&doc, "ReadinessFunction");
    assert!(!statements.is_empty(), "the readiness function has no role");
    for s in statements {
        let resource = format!("{:?}", s.get("Resource"));
        for action in s.get("Action").map(strings).unwrap_or_default() {
            let verb = action.split(':').nth(1).unwrap_or_default();
            let reads = ["Describe", "List", "Get", "Query"]
                .iter()
                .any(|p| verb.starts_with(p));
            let own_report = action == "s3:PutObject" && resource.contains("/readiness/*");
            // A vault's copies are listed through its role.
            let vault = action == "sts:AssumeRole" && resource.contains("VaultRoleArns");
            assert!(
                reads || own_report || vault,
                "the readiness role may {action} on {resource}: it only reads"
            );
        }
    }
}

// Parameters that land in a policy: a value such as `*` or `a*` would widen an ARN (or an
// ArnLike condition) from the plan's resources to everyone's.

/// Characters a parameter inside a policy must never hold: IAM reads `*` and `?` in
/// resource ARNs (and in `*Like` conditions) as wildcards, and `${...}` as a policy
/// variable.
const WIDENING: &[u8] = b"*?$";

/// The names of `doc`'s parameters that `value` refers to: `!Ref`s, and `${Name}` in
/// `!Sub` templates (not the names a `!Sub` defines itself).
fn parameter_refs(doc: &Value, value: &Value, found: &mut std::collections::BTreeSet<String>) {
    let declared = |name: &str| get(doc, "Parameters").and_then(|p| get(p, name)).is_some();
    let names_in =
        |template: &str, own: &[String], found: &mut std::collections::BTreeSet<String>| {
            let mut rest = template;
            while let Some(start) = rest.find("${") {
                let Some(end) = rest[start..].find('}') else {
                    break;
                };
                let name = &rest[start + 2..start + end];
                if declared(name) && !own.iter().any(|o| o == name) {
                    found.insert(name.to_string());
                }
                rest = &rest[start + end + 1..];
            }
        };
    let inner = untag(value);
    match (tag_of(value).as_deref(), inner) {
        (Some("Ref"), Value::String(name)) if declared(name) => {
            found.insert(name.clone());
        }
        (Some("Sub"), Value::String(template)) => names_in(template, &[], found),
        (Some("Sub"), Value::Sequence(args)) => {
            let own: Vec<String> = args
                .get(1)
                .and_then(|v| untag(v).as_mapping())
                .map(|m| {
                    m.keys()
                        .filter_map(|k| k.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            if let Some(template) = args.first().and_then(|t| untag(t).as_str()) {
                names_in(template, &own, found);
            }
            for v in args.iter().skip(1) {
                parameter_refs(doc, v, found);
            }
        }
        (_, Value::Mapping(map)) => map.values().for_each(|v| parameter_refs(doc, v, found)),
        (_, Value::Sequence(items)) => items.iter().for_each(|v| parameter_refs(doc, v, found)),
        _ => {}
    }
}

/// The parameters of `doc` that some policy statement's `Resource`, `NotResource` or
/// `Condition` is built from.
fn parameters_in_policies(doc: &Value) -> std::collections::BTreeSet<String> {
    let mut all = Vec::new();
    statements(doc, &mut all);
    let mut found = std::collections::BTreeSet::new();
    for s in all {
        for key in ["Resource", "NotResource", "Condition"] {
            if let Some(v) = s.get(key) {
                parameter_refs(doc, v, &mut found);
            }
        }
    }
    found
}

/// The first of [`WIDENING`] that some value matching `pattern` (anchored at both ends,
/// as CloudFormation applies it) contains, or `None` if no such value exists. Exact: the
/// pattern's DFA is explored for a reachable state where that character leads to a state
/// from which a whole match can still end.
fn admitted_wildcard(pattern: &str) -> Result<Option<char>, String> {
    use regex_automata::dfa::{Automaton, dense};
    use regex_automata::{Anchored, Input, util::syntax};
    // Over bytes: the characters in question are ASCII, and a Unicode class such as
    // `[^*?$]{1,1024}` would make the DFA needlessly large.
    let dfa = dense::Builder::new()
        .syntax(syntax::Config::new().unicode(false).utf8(false))
        .build(&format!("^(?:{pattern})$"))
        .map_err(|e| e.to_string())?;
    let start = dfa
        .start_state_forward(&Input::new("").anchored(Anchored::Yes))
        .map_err(|e| e.to_string())?;
    let mut reachable = vec![start];
    let mut seen = std::collections::BTreeSet::from([start]);
    let mut edges = Vec::new();
    let mut i = 0;
    while i < reachable.len() {
        let s = reachable[i];
        i += 1;
        for byte in 0..=255u8 {
            let t = dfa.next_state(s, byte);
            if dfa.is_dead_state(t) {
                continue;
            }
            edges.push((s, t));
            if seen.insert(t) {
                reachable.push(t);
            }
        }
    }
    // The states from which a whole match can still end: those that match at the end
    // of the value, and, step by step, those with an edge into them.
    let mut ends: std::collections::BTreeSet<_> = reachable
        .iter()
        .copied()
        .filter(|&s| dfa.is_match_state(dfa.next_eoi_state(s)))
        .collect();
    loop {
        let before = ends.len();
        for &(s, t) in &edges {
            if ends.contains(&t) {
                ends.insert(s);
            }
        }
        if ends.len() == before {
            break;
        }
    }
    for &byte in WIDENING {
        if reachable
            .iter()
            .any(|&s| ends.contains(&dfa.next_state(s, byte)))
        {
            return Ok(Some(char::from(byte)));
        }
    }
    Ok(None)
}

/// The parameters inside `doc`'s policies whose values could widen them: no
/// `AllowedPattern` (nor `AllowedValues`), or one admitting a wildcard.
fn widenable_parameters(doc: &Value) -> Vec<String> {
    let mut bad = Vec::new();
    for name in parameters_in_policies(doc) {
        let param = get(doc, "Parameters").and_then(|p| get(p, &name)).unwrap();
        if let Some(values) = get(param, "AllowedValues") {
            for v in strings(values) {
                if v.bytes().any(|b| WIDENING.contains(&b)) {
                    bad.push(format!("{name}: AllowedValues holds {v:?}"));
                }
            }
            continue;
        }
        let Some(pattern) = get(param, "AllowedPattern").and_then(Value::as_str) else {
            bad.push(format!("{name}: no AllowedPattern"));
            continue;
        };
        if get(param, "ConstraintDescription").is_none() {
            bad.push(format!(
                "{name}: no ConstraintDescription (CloudFormation would only quote the pattern)"
            ));
        }
        match admitted_wildcard(pattern) {
            Ok(None) => {}
            Ok(Some(c)) => bad.push(format!("{name}: AllowedPattern admits {c:?}")),
            Err(e) => bad.push(format!("{name}: AllowedPattern does not parse: {e}")),
        }
    }
    bad
}

#[test]
fn every_parameter_inside_a_policy_refuses_wildcards() {
    for (name, text) in templates() {
        let doc = parse(&name, &text);
        let bad = widenable_parameters(&doc);
        assert!(
            bad.is_empty(),
            "{name}: a parameter value could widen a policy beyond the plan's resources \
             (give it an AllowedPattern without * ? $ and a ConstraintDescription):\n{}",
            bad.join("\n")
        );
    }
    // The template's identifiers are among them (a refactoring that stopped this test
    // from seeing them would pass it trivially).
    let doc = parse(
        "template.yaml",
        &std::fs::read_to_string(infra().join("template.yaml")).unwrap(),
    );
    let used = parameters_in_policies(&doc);
    for name in [
        "PlanName",
        "PlanBucket",
        "PlanKey",
        "ProtectedDatabaseIds",
        "ReplicaDatabaseIds",
        "GlobalClusterIds",
        "ProtectedTableNames",
        "HostedZoneId",
        "HealthAlarmNames",
        "PrimaryKmsKeyArns",
        "VaultRoleArns",
        "ValidationSecretArns",
    ] {
        assert!(
            used.contains(name),
            "{name} is not seen inside a policy: {used:?}"
        );
    }
}

#[test]
fn the_wildcard_check_knows_patterns() {
    for (pattern, admits) in [
        (r"^[a-z](-?[a-z0-9]){0,62}$", None),
        (r"^([a-zA-Z0-9_.-]{3,255})?$", None),
        (r"^[^*?$]{1,255}$", None),
        (r".*", Some('*')),
        (r"^[a-z*]+$", Some('*')),
        (r"^a\??$", Some('?')),
        (r"^[a-z]+(-\$)?$", Some('$')),
        (r"^[a-z]{2}(-[a-z]+)+-[0-9]$", None),
        (r"^a(\*b)?c$", Some('*')),
        (r"^x|\*$", Some('*')),
    ] {
        assert_eq!(admitted_wildcard(pattern), Ok(admits), "{pattern}");
    }
}

const BAD_PARAMETERS: &str = r#"
Parameters:
  Open:
    Type: String
  Loose:
    Type: CommaDelimitedList
    AllowedPattern: "^[a-z0-9*-]+$"
    ConstraintDescription: ids
  Tight:
    Type: String
    AllowedPattern: "^[a-z]+$"
  Listed:
    Type: String
    AllowedValues: [a, "*"]
  Unused:
    Type: String
Resources:
  Role:
    Type: AWS::IAM::Role
    Properties:
      Policies:
        - PolicyDocument:
            Statement:
              - Effect: Allow
                Action: rds:DeleteDBInstance
                Resource: !Sub arn:aws:rds:*:*:db:${Open}
              - Effect: Allow
                Action: rds:StopDBInstance
                Resource: !Split [",", !Join [",", !Ref Loose]]
              - Effect: Allow
                Action: s3:PutObject
                Resource: !Sub
                  - arn:aws:s3:::${Bucket}/${Tight}
                  - Bucket: !Ref Listed
"#;

#[test]
fn the_parameter_check_catches_what_it_is_for() {
    let doc = parse("bad", BAD_PARAMETERS);
    assert_eq!(
        widenable_parameters(&doc),
        [
            "Listed: AllowedValues holds \"*\"",
            "Loose: AllowedPattern admits '*'",
            "Open: no AllowedPattern",
            "Tight: no ConstraintDescription (CloudFormation would only quote the pattern)",
        ]
    );
}
