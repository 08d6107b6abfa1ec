//! The measures MES accepts, with their profiles, codes and units (reference table 1.2), and
//! the glucose terminology (JDV J154, J157, J163, J164).
//!
//! Each measure is recognised under three canonical URL generations: ANS IG 3.x, MES-own and
//! ENS-era (CI-SIS v1.2). An Observation must declare one of the flavours of its own measure.

/// The measures of the MES profile list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Measure {
    BodyWeight,
    BodyHeight,
    Bmi,
    WaistCircumference,
    BloodPressure,
    Glucose,
    BodyTemperature,
    HeartRate,
    /// Only under the ANS IG 3.x profile: see the README's gaps.
    OxygenSaturation,
    PainSeverity,
    StepsByDay,
    HeadCircumference,
}

pub(crate) const LOINC: &str = "http://loinc.org";
pub(crate) const UCUM: &str = "http://unitsofmeasure.org";
pub(crate) const NOS_LOINC: &str =
    "https://mos.esante.gouv.fr/NOS/TRE_A04-Loinc/FHIR/TRE-A04-Loinc";
pub(crate) const NOS_TAASIP: &str =
    "https://mos.esante.gouv.fr/NOS/TRE_R308-TAASIP/FHIR/TRE-R308-TAASIP";
pub(crate) const NOS_CISP2: &str =
    "https://mos.esante.gouv.fr/NOS/TRE_R313-CISP2/FHIR/TRE-R313-CISP2";
pub(crate) const OBSERVATION_CATEGORY: &str =
    "http://terminology.hl7.org/CodeSystem/observation-category";
pub(crate) const PHD_DEVICE: &str = "http://hl7.org/fhir/uv/phd/StructureDefinition/PhdDevice";
pub(crate) const MDC: &str = "urn:iso:std:iso:11073:10101";

const ANS: &str = "https://interop.esante.gouv.fr/ig/fhir/mesures/StructureDefinition/";
const MES: &str = "https://fhir.monespacesante.fr/ref/mesure/StructureDefinition/";
const ENS: &str = "http://esante.gouv.fr/ci-sis/fhir/StructureDefinition/";

/// How the value of a measure is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ValueRule {
    /// `valueQuantity` in this UCUM code; `unit` must equal `unit_text` when set.
    Quantity {
        code: &'static str,
        unit_text: Option<&'static str>,
    },
    /// No `value[x]`; systolic and diastolic components in mm[Hg].
    BloodPressureComponents,
    /// `valueQuantity` whose unit depends on the glucose type.
    Glucose,
}

/// One measure: its profiles (ANS, MES, ENS ids) and accepted codes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MeasureSpec {
    pub(crate) measure: Measure,
    /// Name used in messages.
    pub(crate) name: &'static str,
    ans: &'static str,
    mes: &'static str,
    ens: &'static str,
    /// Accepted `(system, code)` codings of `Observation.code`.
    pub(crate) codes: &'static [(&'static str, &'static str)],
    pub(crate) value: ValueRule,
    /// `bodySite` (coded) is required.
    pub(crate) body_site_required: bool,
}

const fn quantity(code: &'static str) -> ValueRule {
    ValueRule::Quantity {
        code,
        unit_text: None,
    }
}

/// Table 1.2 of the reference, restricted to the eleven MES profiles.
pub(crate) const MEASURES: &[MeasureSpec] = &[
    MeasureSpec {
        measure: Measure::BodyWeight,
        name: "body weight",
        ans: "mesures-fr-observation-body-weight",
        mes: "mes-observation-bodyweight",
        ens: "ENS_FrObservationBodyWeight",
        codes: &[(LOINC, "29463-7")],
        value: quantity("kg"),
        body_site_required: false,
    },
    MeasureSpec {
        measure: Measure::BodyHeight,
        name: "body height",
        ans: "mesures-fr-observation-bodyheight",
        mes: "mes-observation-bodyheight",
        ens: "ENS_FrObservationBodyHeight",
        codes: &[(LOINC, "8302-2")],
        value: quantity("cm"),
        body_site_required: false,
    },
    MeasureSpec {
        measure: Measure::Bmi,
        name: "BMI",
        ans: "mesures-fr-observation-bmi",
        mes: "mes-observation-bmi",
        ens: "ENS_FrObservationBmi",
        codes: &[(LOINC, "39156-5")],
        value: quantity("kg/m2"),
        body_site_required: false,
    },
    MeasureSpec {
        measure: Measure::WaistCircumference,
        name: "waist circumference",
        ans: "mesures-observation-waist-circumference",
        mes: "mes-observation-waistcircumference",
        ens: "ENS_ObservationWaistCircumference",
        codes: &[(LOINC, "8280-0")],
        value: quantity("cm"),
        body_site_required: false,
    },
    MeasureSpec {
        measure: Measure::BloodPressure,
        name: "blood pressure",
        ans: "mesures-fr-observation-bp",
        mes: "mes-observation-bp",
        ens: "ENS_FrObservationBp",
        codes: &[(LOINC, "85354-9")],
        value: ValueRule::BloodPressureComponents,
        body_site_required: true,
    },
    MeasureSpec {
        measure: Measure::Glucose,
        name: "glucose",
        ans: "mesures-observation-glucose",
        mes: "mes-observation-glucose",
        ens: "ENS_ObservationGlucose",
        codes: &[
            (NOS_LOINC, "2345-7"),
            (NOS_LOINC, "4548-4"),
            (NOS_TAASIP, "MED-969"),
            (NOS_TAASIP, "MED-972"),
        ],
        value: ValueRule::Glucose,
        body_site_required: false,
    },
    MeasureSpec {
        measure: Measure::BodyTemperature,
        name: "body temperature",
        ans: "mesures-fr-observation-body-temperature",
        mes: "mes-observation-bodytemperature",
        ens: "ENS_FrObservationBodyTemperature",
        codes: &[(LOINC, "8310-5")],
        value: quantity("Cel"),
        body_site_required: true,
    },
    MeasureSpec {
        measure: Measure::HeartRate,
        name: "heart rate",
        ans: "mesures-fr-observation-heartrate",
        mes: "mes-observation-heartrate",
        ens: "ENS_FrObservationHeartrate",
        codes: &[(LOINC, "8867-4")],
        value: quantity("/min"),
        body_site_required: false,
    },
    MeasureSpec {
        measure: Measure::OxygenSaturation,
        name: "oxygen saturation",
        ans: "mesures-fr-observation-oxygen-sat",
        // No MES-own or ENS-era profile exists for it: those generations refuse it.
        mes: "",
        ens: "",
        codes: &[(LOINC, "2708-6")],
        value: quantity("%"),
        body_site_required: false,
    },
    MeasureSpec {
        measure: Measure::PainSeverity,
        name: "pain severity",
        ans: "mesures-observation-pain-severity",
        mes: "mes-observation-painseverity",
        ens: "ENS_ObservationPainSeverity",
        codes: &[(LOINC, "72514-3")],
        value: ValueRule::Quantity {
            code: "1",
            unit_text: Some("Level"),
        },
        body_site_required: false,
    },
    MeasureSpec {
        measure: Measure::StepsByDay,
        name: "steps by day",
        ans: "mesures-observation-steps-by-day",
        mes: "mes-observation-stepsbyday",
        ens: "ENS_ObservationStepsByDay",
        codes: &[(LOINC, "41950-7")],
        value: quantity("1/(24.h)"),
        body_site_required: false,
    },
    MeasureSpec {
        measure: Measure::HeadCircumference,
        name: "head circumference",
        ans: "mesures-observation-head-circumference",
        mes: "mes-observation-headcircumference",
        ens: "ENS_ObservationHeadCircumference",
        codes: &[(LOINC, "8287-5"), (LOINC, "9843-4")],
        value: quantity("cm"),
        body_site_required: false,
    },
];

/// ANS IG profiles that exist but are not in the MES profile list.
const ANS_NOT_ACCEPTED: &[&str] = &[
    "mesures-fr-observation-resp-rate",
    "mesures-observation-hb1ac",
];

impl MeasureSpec {
    /// Whether `url` (without a `|version` suffix) is one of this measure's profiles.
    pub(crate) fn has_profile(&self, url: &str) -> bool {
        let url = canonical(url);
        [(ANS, self.ans), (MES, self.mes), (ENS, self.ens)]
            .iter()
            .filter(|(_, id)| !id.is_empty())
            .any(|(base, id)| url.strip_prefix(base) == Some(id))
    }

    /// The three accepted profile URLs, for messages.
    pub(crate) fn profile_urls(&self) -> [String; 3] {
        [
            format!("{ANS}{}", self.ans),
            format!("{MES}{}", self.mes),
            format!("{ENS}{}", self.ens),
        ]
    }
}

/// A canonical URL without its `|version` suffix.
pub(crate) fn canonical(url: &str) -> &str {
    url.split('|').next().unwrap_or(url)
}

/// The measure whose profile is `url`.
pub(crate) fn measure_of_profile(url: &str) -> Option<&'static MeasureSpec> {
    MEASURES.iter().find(|m| m.has_profile(url))
}

/// Whether `url` is a known measure profile that MES does not accept.
pub(crate) fn is_unaccepted_profile(url: &str) -> bool {
    let url = canonical(url);
    url.strip_prefix(ANS)
        .is_some_and(|id| ANS_NOT_ACCEPTED.contains(&id))
}

/// The codes the search accepts (the list of spec v1.5.2 §2.3.1.1, plus head circumference
/// 9843-4 of IG 3.1.1).
pub(crate) fn is_searchable_code(code: &str) -> bool {
    MEASURES
        .iter()
        .flat_map(|m| m.codes.iter())
        .any(|(_, c)| *c == code)
}

/// The four glucose indicators of §1.4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GlucoseKind {
    Blood,
    HbA1c,
    Interstitial,
    Igg,
}

impl GlucoseKind {
    /// The indicator of a J154 code.
    pub(crate) fn of(system: &str, code: &str) -> Option<Self> {
        match (system, code) {
            (NOS_LOINC, "2345-7") => Some(Self::Blood),
            (NOS_LOINC, "4548-4") => Some(Self::HbA1c),
            (NOS_TAASIP, "MED-969") => Some(Self::Interstitial),
            (NOS_TAASIP, "MED-972") => Some(Self::Igg),
            _ => None,
        }
    }

    /// Required UCUM unit (the matrix of §1.4).
    pub(crate) fn unit(self) -> &'static str {
        match self {
            Self::Blood | Self::Interstitial => "mg/dL",
            Self::HbA1c | Self::Igg => "%",
        }
    }

    /// Whether the moment-of-measurement extension is required (else forbidden).
    pub(crate) fn moment_required(self) -> bool {
        self == Self::Blood
    }

    /// Whether the number-of-days extension is required (else forbidden).
    pub(crate) fn number_of_days_required(self) -> bool {
        matches!(self, Self::Interstitial | Self::Igg)
    }
}

/// URLs of the moment-of-measurement extension (ANS, ENS).
pub(crate) const MOMENT_URLS: &[&str] = &[
    "https://interop.esante.gouv.fr/ig/fhir/mesures/StructureDefinition/mesures-moment-of-measurement",
    "http://esante.gouv.fr/ci-sis/fhir/StructureDefinition/ENS_MomentOfMeasurement",
];

/// URLs of the number-of-days extension (ANS, ENS).
pub(crate) const NUMBER_OF_DAYS_URLS: &[&str] = &[
    "https://interop.esante.gouv.fr/ig/fhir/mesures/StructureDefinition/mesures-number-of-days",
    "http://esante.gouv.fr/ci-sis/fhir/StructureDefinition/ENS_NumberOfDays",
];

/// JDV J157: glucose moment codes.
pub(crate) const J157: &[(&str, &str)] = &[
    (NOS_LOINC, "16915-1"),
    (NOS_LOINC, "53049-3"),
    (NOS_LOINC, "88365-2"),
    (NOS_LOINC, "LA11865-5"),
    (NOS_LOINC, "LA46-8"),
    (NOS_CISP2, "A05"),
];

/// JDV J164: number-of-days codes.
pub(crate) const J164: &[(&str, &str)] = &[
    (NOS_TAASIP, "GEN-275"),
    (NOS_TAASIP, "GEN-276"),
    (NOS_TAASIP, "GEN-277"),
    (NOS_TAASIP, "GEN-278"),
    (NOS_TAASIP, "GEN-092"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_flavour_of_weight_profile_is_recognised() {
        for url in [
            "https://interop.esante.gouv.fr/ig/fhir/mesures/StructureDefinition/mesures-fr-observation-body-weight",
            "https://interop.esante.gouv.fr/ig/fhir/mesures/StructureDefinition/mesures-fr-observation-body-weight|3.1.0",
            "https://fhir.monespacesante.fr/ref/mesure/StructureDefinition/mes-observation-bodyweight",
            "http://esante.gouv.fr/ci-sis/fhir/StructureDefinition/ENS_FrObservationBodyWeight",
        ] {
            assert_eq!(
                measure_of_profile(url).map(|m| m.measure),
                Some(Measure::BodyWeight)
            );
        }
        assert!(measure_of_profile("http://example.org/weight").is_none());
    }

    #[test]
    fn oxygen_saturation_is_accepted_only_under_the_ans_profile() {
        let url = "https://interop.esante.gouv.fr/ig/fhir/mesures/StructureDefinition/mesures-fr-observation-oxygen-sat";
        assert_eq!(
            measure_of_profile(url).map(|m| m.measure),
            Some(Measure::OxygenSaturation)
        );
        assert!(!is_unaccepted_profile(url));
        // The bare base URLs of the other generations are no profile.
        assert!(
            measure_of_profile("https://fhir.monespacesante.fr/ref/mesure/StructureDefinition/")
                .is_none()
        );
        let resp = "https://interop.esante.gouv.fr/ig/fhir/mesures/StructureDefinition/mesures-fr-observation-resp-rate";
        assert!(is_unaccepted_profile(resp));
    }

    #[test]
    fn glucose_matrix_matches_reference() {
        assert_eq!(
            GlucoseKind::of(NOS_LOINC, "2345-7"),
            Some(GlucoseKind::Blood)
        );
        assert_eq!(GlucoseKind::of(LOINC, "2345-7"), None);
        assert_eq!(GlucoseKind::HbA1c.unit(), "%");
        assert!(GlucoseKind::Blood.moment_required());
        assert!(!GlucoseKind::Interstitial.moment_required());
        assert!(GlucoseKind::Igg.number_of_days_required());
        assert!(!GlucoseKind::HbA1c.number_of_days_required());
    }
}
