//! The write-side business rules of API Mesure (spec v1.5.2 §2.2 and the reference §1, §2.1).
//!
//! Checks run in four stages, each stopping the request when it finds an error:
//! 1. the Bundle itself (type, entries, methods, ifNoneExist): "Bundle not valid.";
//! 2. the Observation-Device link: "Observation and Device link not valid.";
//! 3. the patient: a `subject.identifier` other than the authorized one is a 403;
//! 4. the resources, all issues collected: "Observation resource not valid." and
//!    "Device resource not valid.".
//!
//! Diagnostics quoted in the MES error table are used verbatim; the others are the
//! sandbox's own wording (listed in the README).

use serde_json::Value;

use super::outcome::{Issue, IssueType, category};
use super::profiles::{
    self, GlucoseKind, J157, J164, LOINC, MDC, MOMENT_URLS, Measure, MeasureSpec,
    NUMBER_OF_DAYS_URLS, OBSERVATION_CATEGORY, PHD_DEVICE, UCUM, ValueRule,
};
use super::time::Patterns;

/// Who is writing, as established by the tokens.
#[derive(Debug, Clone)]
pub(crate) struct WriteContext<'a> {
    /// The partner's OID (`meta.source` must start with it).
    pub(crate) partner_oid: &'a str,
    /// OID of the idPe's assigning authority.
    pub(crate) assign_auth: &'a str,
    /// The idPe the tokens authorize.
    pub(crate) id_pe: &'a str,
    pub(crate) patterns: &'a Patterns,
}

/// A Bundle that passed every check.
#[derive(Debug, Clone)]
pub(crate) struct ValidWrite {
    /// The Observation resource as sent.
    pub(crate) observation: Value,
    /// Its measure code (e.g. `29463-7`, `MED-969`).
    pub(crate) code: String,
    pub(crate) effective: String,
    pub(crate) effective_ms: i64,
    pub(crate) device: Option<ValidDevice>,
    /// Resource type of each entry, in request order (the response follows it).
    pub(crate) entry_order: Vec<EntryKind>,
}

/// The Device of a valid Bundle.
#[derive(Debug, Clone)]
pub(crate) struct ValidDevice {
    pub(crate) id: String,
    /// `urn:oid:<oid>` from `ifNoneExist`.
    pub(crate) identifier_system: String,
    pub(crate) identifier_value: String,
    pub(crate) resource: Value,
}

/// Kind of an accepted entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EntryKind {
    Observation,
    Device,
}

/// Why a write is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Rejection {
    /// The body is not a Bundle.
    NoBundle,
    /// `subject.identifier` names another patient than the authorized one (403).
    IdPeMismatch,
    /// Business rules failed (422).
    Invalid(Vec<Issue>),
}

fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn non_empty<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    str_at(v, key).filter(|s| !s.trim().is_empty())
}

fn array_at<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// `(system, code)` pairs of a CodeableConcept.
fn codings(concept: Option<&Value>) -> Vec<(&str, &str)> {
    concept
        .map(|c| array_at(c, "coding"))
        .unwrap_or(&[])
        .iter()
        .filter_map(|c| Some((str_at(c, "system")?, str_at(c, "code")?)))
        .collect()
}

/// Whether `s` is a bare uuid (8-4-4-4-12 hexadecimal digits).
fn is_bare_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// One entry of the Bundle, as far as stage 1 understood it.
struct Entry<'a> {
    index: usize,
    kind: EntryKind,
    entry: &'a Value,
    resource: &'a Value,
}

/// Validates a write Bundle.
pub(crate) fn validate_write(
    bundle: &Value,
    ctx: &WriteContext<'_>,
) -> Result<ValidWrite, Rejection> {
    if str_at(bundle, "resourceType") != Some("Bundle") {
        return Err(Rejection::NoBundle);
    }
    let (observation, device, entry_order) = check_bundle(bundle, ctx)?;
    check_link(&observation, device.as_ref())?;
    check_subject(observation.resource, ctx)?;

    let mut issues = Vec::new();
    let facts = check_observation(observation.resource, ctx, &mut issues);
    let device = match device {
        Some(d) => check_device(&d, ctx, &mut issues),
        None => None,
    };
    match facts {
        Some(facts) if issues.is_empty() => Ok(ValidWrite {
            observation: observation.resource.clone(),
            code: facts.code,
            effective: facts.effective,
            effective_ms: facts.effective_ms,
            device,
            entry_order,
        }),
        _ => Err(Rejection::Invalid(issues)),
    }
}

/// Stage 1: Bundle type, entries, methods and the Device's `ifNoneExist`.
fn check_bundle<'a>(
    bundle: &'a Value,
    ctx: &WriteContext<'_>,
) -> Result<(Entry<'a>, Option<Entry<'a>>, Vec<EntryKind>), Rejection> {
    let mut issues = Vec::new();
    if str_at(bundle, "type") != Some("transaction") {
        issues.push(
            Issue::new(
                category::BUNDLE,
                IssueType::Invalid,
                "Bundle type must be transaction.",
            )
            .at("Bundle.type"),
        );
    }
    let mut observations = Vec::new();
    let mut devices = Vec::new();
    for (index, entry) in array_at(bundle, "entry").iter().enumerate() {
        let resource = entry.get("resource").unwrap_or(&Value::Null);
        let rtype = str_at(resource, "resourceType").unwrap_or("");
        let request = entry.get("request").unwrap_or(&Value::Null);
        let method = str_at(request, "method").unwrap_or("");
        let kind = match (rtype, method) {
            ("Observation", "POST") => EntryKind::Observation,
            ("Device", "POST") => EntryKind::Device,
            _ => {
                issues.push(
                    Issue::new(
                        category::BUNDLE,
                        IssueType::NotSupported,
                        format!("Resource of type {rtype} is not acceptable with method {method}."),
                    )
                    .at(format!("Bundle.entry[{index}]")),
                );
                continue;
            }
        };
        if str_at(request, "url") != Some(rtype) {
            issues.push(
                Issue::new(
                    category::BUNDLE,
                    IssueType::Invalid,
                    format!("Bundle.entry.request.url must be {rtype}."),
                )
                .at(format!("Bundle.entry[{index}].request.url")),
            );
        }
        let e = Entry {
            index,
            kind,
            entry,
            resource,
        };
        match kind {
            EntryKind::Observation => observations.push(e),
            EntryKind::Device => devices.push(e),
        }
    }
    if observations.len() != 1 {
        issues.push(
            Issue::new(
                category::BUNDLE,
                IssueType::Invalid,
                "Bundle must contains one observation creation (POST)",
            )
            .at("Bundle.entry"),
        );
    }
    if devices.len() > 1 {
        issues.push(
            Issue::new(
                category::BUNDLE,
                IssueType::Invalid,
                "Bundle must contains at most one device creation (POST)",
            )
            .at("Bundle.entry"),
        );
    }
    for d in &devices {
        let if_none_exist = d
            .entry
            .get("request")
            .and_then(|r| str_at(r, "ifNoneExist"))
            .unwrap_or("");
        if ctx.patterns.parse_if_none_exist(if_none_exist).is_none() {
            issues.push(
                Issue::new(
                    category::BUNDLE,
                    IssueType::Invalid,
                    "Device request must have a valid IfNoneExist attribute : \
                     identifier=urn:oid:<OID>|<DEVICE ID>",
                )
                .at(format!("Bundle.entry[{}].request.ifNoneExist", d.index)),
            );
        }
    }
    if !issues.is_empty() {
        return Err(Rejection::Invalid(issues));
    }
    let mut order: Vec<(usize, EntryKind)> = observations
        .iter()
        .chain(devices.iter())
        .map(|e| (e.index, e.kind))
        .collect();
    order.sort_by_key(|(i, _)| *i);
    let order = order.into_iter().map(|(_, k)| k).collect();
    let mut observations = observations.into_iter();
    match observations.next() {
        Some(observation) => Ok((observation, devices.into_iter().next(), order)),
        None => Err(Rejection::Invalid(Vec::new())),
    }
}

/// Stage 2: the Observation's `fullUrl` and its reference to the Bundle's Device.
fn check_link(observation: &Entry<'_>, device: Option<&Entry<'_>>) -> Result<(), Rejection> {
    let mut issues = Vec::new();
    if non_empty(observation.entry, "fullUrl").is_none() {
        issues.push(
            Issue::new(
                category::LINK,
                IssueType::Invalid,
                "Bundle.entry.fullUrl is mandatory for the Observation.",
            )
            .at(format!("Bundle.entry[{}].fullUrl", observation.index)),
        );
    }
    let reference = observation
        .resource
        .get("device")
        .and_then(|d| str_at(d, "reference"));
    let not_linked = || {
        Issue::new(
            category::LINK,
            IssueType::Invalid,
            "Observation and device not linked by id (Observation.device.reference <-> Device.id)",
        )
        .at("Observation.device.reference")
    };
    match (device, reference) {
        (Some(_), None) => issues.push(
            Issue::new(
                category::LINK,
                IssueType::Invalid,
                "Observation.device.reference is mandatory.",
            )
            .at("Observation.device.reference"),
        ),
        (Some(d), Some(reference)) => {
            let linked = str_at(d.resource, "id")
                .filter(|id| is_bare_uuid(id))
                .is_some_and(|id| reference.strip_prefix("Device/") == Some(id));
            if !linked {
                issues.push(not_linked());
            }
        }
        (None, Some(_)) => issues.push(not_linked()),
        (None, None) => {}
    }
    if issues.is_empty() {
        Ok(())
    } else {
        Err(Rejection::Invalid(issues))
    }
}

/// Stage 3: a `subject.identifier` naming another patient is refused with 403. A missing one
/// is a 422 reported in stage 4.
fn check_subject(observation: &Value, ctx: &WriteContext<'_>) -> Result<(), Rejection> {
    let identifier = observation.get("subject").and_then(|s| s.get("identifier"));
    let (Some(system), Some(value)) = (
        identifier.and_then(|i| non_empty(i, "system")),
        identifier.and_then(|i| non_empty(i, "value")),
    ) else {
        return Ok(());
    };
    if system.strip_prefix("urn:oid:") != Some(ctx.assign_auth) || value != ctx.id_pe {
        return Err(Rejection::IdPeMismatch);
    }
    Ok(())
}

/// What stage 4 learnt about a valid Observation.
struct ObservationFacts {
    code: String,
    effective: String,
    effective_ms: i64,
}

fn obs_issue(code: IssueType, diagnostics: impl Into<String>) -> Issue {
    Issue::new(category::OBSERVATION, code, diagnostics)
}

/// Stage 4, Observation.
fn check_observation(
    obs: &Value,
    ctx: &WriteContext<'_>,
    issues: &mut Vec<Issue>,
) -> Option<ObservationFacts> {
    let meta = obs.get("meta").unwrap_or(&Value::Null);
    let declared: Vec<&str> = array_at(meta, "profile")
        .iter()
        .filter_map(Value::as_str)
        .filter(|p| !p.trim().is_empty())
        .collect();
    let code_codings = codings(obs.get("code"));

    // BMI is computed by MES: refused whatever else the resource says.
    let is_bmi = code_codings.contains(&(LOINC, "39156-5"))
        || declared
            .iter()
            .any(|p| profiles::measure_of_profile(p).is_some_and(|m| m.measure == Measure::Bmi));
    if is_bmi {
        issues.push(
            obs_issue(
                IssueType::NotSupported,
                "Bmi observation cannot be created.",
            )
            .at("Observation.code"),
        );
        return None;
    }

    if declared.is_empty() {
        issues.push(
            obs_issue(
                IssueType::Invalid,
                "Observation must provide meta.profile value.",
            )
            .at("Observation.meta.profile"),
        );
    }
    if let Some(source) = str_at(meta, "source") {
        let root = format!("urn:oid:{}", ctx.partner_oid);
        let belongs = source == root || source.starts_with(&format!("{root}."));
        if !belongs {
            issues.push(
                obs_issue(
                    IssueType::Value,
                    format!(
                        "Solution oid contains in Observation.meta.source don't belong to root editor oid ({}).",
                        ctx.partner_oid
                    ),
                )
                .at("Observation.meta.source"),
            );
        }
    }
    let identifier = obs.get("subject").and_then(|s| s.get("identifier"));
    if identifier.and_then(|i| non_empty(i, "system")).is_none()
        || identifier.and_then(|i| non_empty(i, "value")).is_none()
    {
        issues.push(
            obs_issue(
                IssueType::Invalid,
                "Observation.subject.identifier is mandatory.",
            )
            .at("Observation.subject.identifier"),
        );
    }
    check_status(obs, issues);
    let vital_signs = array_at(obs, "category")
        .iter()
        .any(|c| codings(Some(c)).contains(&(OBSERVATION_CATEGORY, "vital-signs")));
    if !vital_signs {
        issues.push(
            obs_issue(
                IssueType::Invalid,
                format!("Observation.category must contain {OBSERVATION_CATEGORY}#vital-signs."),
            )
            .at("Observation.category"),
        );
    }
    let effective = check_effective(obs, ctx.patterns, issues);

    let spec = measure_from_profiles(&declared, issues)?;
    let code = check_code(spec, &code_codings, issues);
    check_value(obs, spec, code.as_ref().and_then(|c| c.1), issues);
    if spec.body_site_required && codings(obs.get("bodySite")).is_empty() {
        issues.push(
            obs_issue(
                IssueType::Incomplete,
                format!("Observation.bodySite is mandatory for {}.", spec.name),
            )
            .at("Observation.bodySite"),
        );
    }
    if let Some((_, Some(kind))) = &code {
        check_glucose_extensions(obs, *kind, issues);
    }
    let (effective, effective_ms) = effective?;
    Some(ObservationFacts {
        code: code?.0,
        effective,
        effective_ms,
    })
}

fn check_status(obs: &Value, issues: &mut Vec<Issue>) {
    const STATUSES: &[&str] = &[
        "registered",
        "preliminary",
        "final",
        "amended",
        "corrected",
        "cancelled",
        "entered-in-error",
        "unknown",
    ];
    match str_at(obs, "status") {
        None => issues.push(
            obs_issue(IssueType::Invalid, "Observation.status is mandatory.")
                .at("Observation.status"),
        ),
        Some(s) if !STATUSES.contains(&s) => issues.push(
            obs_issue(
                IssueType::Invalid,
                format!("Observation.status {s} is not a valid observation status."),
            )
            .at("Observation.status"),
        ),
        Some(_) => {}
    }
}

fn check_effective(
    obs: &Value,
    patterns: &Patterns,
    issues: &mut Vec<Issue>,
) -> Option<(String, i64)> {
    let other = ["effectivePeriod", "effectiveInstant", "effectiveTiming"]
        .iter()
        .any(|k| obs.get(*k).is_some());
    let Some(value) = str_at(obs, "effectiveDateTime") else {
        let message = if other {
            "Observation.effective[x] must be an effectiveDateTime."
        } else {
            "Observation.effectiveDateTime is mandatory."
        };
        issues.push(obs_issue(IssueType::Invalid, message).at("Observation.effectiveDateTime"));
        return None;
    };
    match patterns.parse_date_time(value) {
        Some(ms) => Some((value.to_owned(), ms)),
        None => {
            issues.push(
                obs_issue(
                    IssueType::Invalid,
                    "Observation.effectiveDateTime must be a dateTime with seconds and a UTC \
                     offset (e.g. 2022-08-22T01:56:16+01:00).",
                )
                .at("Observation.effectiveDateTime"),
            );
            None
        }
    }
}

/// The measure the declared profiles name (they must all name the same one).
fn measure_from_profiles(
    declared: &[&str],
    issues: &mut Vec<Issue>,
) -> Option<&'static MeasureSpec> {
    let mut found: Option<&'static MeasureSpec> = None;
    for p in declared {
        match profiles::measure_of_profile(p) {
            Some(spec) => match found {
                Some(f) if f.measure != spec.measure => {
                    issues.push(
                        obs_issue(
                            IssueType::Invalid,
                            "Observation.meta.profile declares profiles of different measures.",
                        )
                        .at("Observation.meta.profile"),
                    );
                    return None;
                }
                _ => found = Some(spec),
            },
            None if profiles::is_unaccepted_profile(p) => {
                issues.push(
                    obs_issue(
                        IssueType::NotSupported,
                        format!("Observation profile {p} is not accepted by Mon espace santé."),
                    )
                    .at("Observation.meta.profile"),
                );
                return None;
            }
            None => {}
        }
    }
    if found.is_none() && !declared.is_empty() {
        issues.push(
            obs_issue(
                IssueType::Invalid,
                format!(
                    "Observation.meta.profile {} is not a Mon espace santé measure profile.",
                    declared.join(", ")
                ),
            )
            .at("Observation.meta.profile"),
        );
    }
    found
}

/// Checks `Observation.code` against the measure; returns the code and, for glucose, its kind.
fn check_code(
    spec: &MeasureSpec,
    code_codings: &[(&str, &str)],
    issues: &mut Vec<Issue>,
) -> Option<(String, Option<GlucoseKind>)> {
    let matched = code_codings
        .iter()
        .find(|(s, c)| spec.codes.contains(&(*s, *c)));
    match matched {
        Some((system, code)) => Some((
            (*code).to_owned(),
            if spec.measure == Measure::Glucose {
                GlucoseKind::of(system, code)
            } else {
                None
            },
        )),
        None => {
            let expected = spec
                .codes
                .iter()
                .map(|(s, c)| format!("{s}|{c}"))
                .collect::<Vec<_>>()
                .join(" or ");
            let [ans, ..] = spec.profile_urls();
            issues.push(
                obs_issue(
                    IssueType::Invalid,
                    format!("Observation.code must be {expected} for profile {ans}."),
                )
                .at("Observation.code"),
            );
            None
        }
    }
}

fn value_missing() -> Issue {
    obs_issue(IssueType::Value, "Observation value quantity not provided.")
        .at("Observation.valueQuantity")
}

/// Checks a Quantity's value, UCUM system and code; `path` names it in messages.
fn check_quantity(
    q: &Value,
    unit: &str,
    unit_text: Option<&str>,
    path: &str,
    issues: &mut Vec<Issue>,
) {
    if !q.get("value").is_some_and(Value::is_number) {
        issues.push(value_missing().at(format!("{path}.value")));
        return;
    }
    if str_at(q, "system") != Some(UCUM) {
        issues.push(
            obs_issue(IssueType::Value, format!("{path}.system must be {UCUM}."))
                .at(format!("{path}.system")),
        );
    }
    if str_at(q, "code") != Some(unit) {
        issues.push(
            obs_issue(IssueType::Value, format!("{path}.code must be {unit}."))
                .at(format!("{path}.code")),
        );
    }
    if let Some(text) = unit_text
        && str_at(q, "unit") != Some(text)
    {
        issues.push(
            obs_issue(IssueType::Value, format!("{path}.unit must be {text}."))
                .at(format!("{path}.unit")),
        );
    }
}

fn check_value(
    obs: &Value,
    spec: &MeasureSpec,
    glucose: Option<GlucoseKind>,
    issues: &mut Vec<Issue>,
) {
    let other_value = obs.as_object().is_some_and(|o| {
        o.keys()
            .any(|k| k.starts_with("value") && k != "valueQuantity")
    });
    match spec.value {
        ValueRule::BloodPressureComponents => check_blood_pressure(obs, issues),
        ValueRule::Quantity { code, unit_text } => match obs.get("valueQuantity") {
            Some(q) => check_quantity(q, code, unit_text, "Observation.valueQuantity", issues),
            None => issues.push(value_missing()),
        },
        ValueRule::Glucose => match (obs.get("valueQuantity"), glucose) {
            (Some(q), Some(kind)) => {
                check_quantity(q, kind.unit(), None, "Observation.valueQuantity", issues)
            }
            (Some(_), None) => {} // the code issue already explains it
            (None, _) => issues.push(value_missing()),
        },
    }
    if other_value && spec.value != ValueRule::BloodPressureComponents {
        issues.push(
            obs_issue(
                IssueType::Invalid,
                "Observation.value[x] must be a valueQuantity.",
            )
            .at("Observation.value[x]"),
        );
    }
}

fn check_blood_pressure(obs: &Value, issues: &mut Vec<Issue>) {
    let has_value = obs
        .as_object()
        .is_some_and(|o| o.keys().any(|k| k.starts_with("value")));
    if has_value {
        issues.push(
            obs_issue(
                IssueType::Invalid,
                "Observation.value[x] is not allowed for blood pressure: use component.",
            )
            .at("Observation.value[x]"),
        );
    }
    let components = array_at(obs, "component");
    for (code, name) in [("8480-6", "systolic"), ("8462-4", "diastolic")] {
        let matching: Vec<&Value> = components
            .iter()
            .filter(|c| codings(c.get("code")).contains(&(LOINC, code)))
            .collect();
        match matching.as_slice() {
            [] => issues.push(value_missing().at(format!("Observation.component({name})"))),
            [one] => match one.get("valueQuantity") {
                Some(q) => check_quantity(
                    q,
                    "mm[Hg]",
                    None,
                    &format!("Observation.component({name}).valueQuantity"),
                    issues,
                ),
                None => issues.push(value_missing().at(format!("Observation.component({name})"))),
            },
            _ => issues.push(
                obs_issue(
                    IssueType::Invalid,
                    format!("Observation.component {LOINC}|{code} must appear once."),
                )
                .at("Observation.component"),
            ),
        }
    }
    let unknown = components.iter().any(|c| {
        let cs = codings(c.get("code"));
        !cs.contains(&(LOINC, "8480-6")) && !cs.contains(&(LOINC, "8462-4"))
    });
    if unknown {
        issues.push(
            obs_issue(
                IssueType::Invalid,
                "Observation.component only allows systolic (8480-6) and diastolic (8462-4) pressures.",
            )
            .at("Observation.component"),
        );
    }
}

/// The glucose matrix of §1.4: moment and number-of-days, required or forbidden.
fn check_glucose_extensions(obs: &Value, kind: GlucoseKind, issues: &mut Vec<Issue>) {
    let extensions = array_at(obs, "extension");
    let find = |urls: &[&str]| {
        extensions
            .iter()
            .filter(|e| str_at(e, "url").is_some_and(|u| urls.contains(&u)))
            .collect::<Vec<_>>()
    };
    let rules = [
        (
            find(MOMENT_URLS),
            kind.moment_required(),
            "moment",
            J157,
            "J157",
        ),
        (
            find(NUMBER_OF_DAYS_URLS),
            kind.number_of_days_required(),
            "numberOfDays",
            J164,
            "J164",
        ),
    ];
    for (present, required, name, jdv, jdv_name) in rules {
        match (present.as_slice(), required) {
            ([], true) => issues.push(
                obs_issue(
                    IssueType::Incomplete,
                    format!("Observation.extension.{name} is mandatory."),
                )
                .at(format!("Observation.extension.{name}")),
            ),
            ([], false) => {}
            (_, false) => issues.push(
                obs_issue(
                    IssueType::Invalid,
                    format!("Observation.extension.{name} cannot be added."),
                )
                .at(format!("Observation.extension.{name}")),
            ),
            ([one], true) => {
                let value = codings(one.get("valueCodeableConcept"));
                if !value.iter().any(|c| jdv.contains(c)) {
                    issues.push(
                        obs_issue(
                            IssueType::Invalid,
                            format!(
                                "Observation.extension.{name} must be coded in JDV {jdv_name}."
                            ),
                        )
                        .at(format!("Observation.extension.{name}")),
                    );
                }
            }
            (_, true) => issues.push(
                obs_issue(
                    IssueType::Invalid,
                    format!("Observation.extension.{name} must appear once."),
                )
                .at(format!("Observation.extension.{name}")),
            ),
        }
    }
}

fn dev_issue(code: IssueType, diagnostics: impl Into<String>) -> Issue {
    Issue::new(category::DEVICE, code, diagnostics)
}

/// Stage 4, Device (PhdDevice as MES uses it).
fn check_device(
    d: &Entry<'_>,
    ctx: &WriteContext<'_>,
    issues: &mut Vec<Issue>,
) -> Option<ValidDevice> {
    let device = d.resource;
    let before = issues.len();
    let declared: Vec<&str> = device
        .get("meta")
        .map(|m| array_at(m, "profile"))
        .unwrap_or(&[])
        .iter()
        .filter_map(Value::as_str)
        .collect();
    if declared.is_empty() {
        issues.push(
            dev_issue(
                IssueType::Invalid,
                "Device must provide meta.profile value.",
            )
            .at("Device.meta.profile"),
        );
    } else if !declared
        .iter()
        .any(|p| profiles::canonical(p) == PHD_DEVICE)
    {
        issues.push(
            dev_issue(
                IssueType::Invalid,
                format!("Device.meta.profile must be {PHD_DEVICE}."),
            )
            .at("Device.meta.profile"),
        );
    }
    let identifiers: Vec<(&str, &str)> = array_at(device, "identifier")
        .iter()
        .filter_map(|i| Some((non_empty(i, "system")?, non_empty(i, "value")?)))
        .collect();
    let if_none_exist = d
        .entry
        .get("request")
        .and_then(|r| str_at(r, "ifNoneExist"))
        .unwrap_or("");
    let key = ctx.patterns.parse_if_none_exist(if_none_exist);
    if identifiers.is_empty() {
        issues.push(
            dev_issue(
                IssueType::Invalid,
                "Device.identifier with system and value is mandatory.",
            )
            .at("Device.identifier"),
        );
    } else if let Some((oid, value)) = key {
        let system = format!("urn:oid:{oid}");
        if !identifiers.contains(&(system.as_str(), value)) {
            issues.push(
                dev_issue(
                    IssueType::Invalid,
                    "Device.identifier does not match the request ifNoneExist.",
                )
                .at("Device.identifier"),
            );
        }
    }
    if !codings(device.get("type")).contains(&(MDC, "65573")) {
        issues.push(
            dev_issue(
                IssueType::Invalid,
                format!("Device.type must be {MDC}#65573."),
            )
            .at("Device.type"),
        );
    }
    for field in ["manufacturer", "modelNumber"] {
        if non_empty(device, field).is_none() {
            issues.push(
                dev_issue(
                    IssueType::Incomplete,
                    format!("Device.{field} is mandatory."),
                )
                .at(format!("Device.{field}")),
            );
        }
    }
    let (oid, value) = key?;
    let id = str_at(device, "id")?;
    (issues.len() == before).then(|| ValidDevice {
        id: id.to_owned(),
        identifier_system: format!("urn:oid:{oid}"),
        identifier_value: value.to_owned(),
        resource: device.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bare_uuid_is_recognised() {
        assert!(is_bare_uuid("d36bfdb6-b1b1-4efd-9cb9-d217a8696575"));
        assert!(!is_bare_uuid(
            "urn:uuid:d36bfdb6-b1b1-4efd-9cb9-d217a8696575"
        ));
        assert!(!is_bare_uuid("d36bfdb6b1b14efd9cb9d217a8696575"));
        assert!(!is_bare_uuid("device-1"));
    }

    #[test]
    fn non_bundle_is_no_bundle() {
        let patterns = Patterns::new().unwrap();
        let ctx = WriteContext {
            partner_oid: "1.2",
            assign_auth: "1.2",
            id_pe: "p",
            patterns: &patterns,
        };
        assert_eq!(
            validate_write(&json!({"resourceType": "Observation"}), &ctx).unwrap_err(),
            Rejection::NoBundle
        );
    }
}
