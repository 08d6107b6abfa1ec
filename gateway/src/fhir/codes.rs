//! The code systems, codes and canonical URLs the MES API Mesure and the ANS "Mesures de santé"
//! profiles use, in one place (reference `mes-api-mesure.md` §0, §1, §3).
//!
//! Displays are sent only where a published example or a NOS value set (JDV) gives them, and then
//! exactly as written there: a validator may flag a display that differs from the code system's.

use std::fmt;
use std::str::FromStr;

use serde_json::{Value, json};

pub const LOINC: &str = "http://loinc.org";
pub const UCUM: &str = "http://unitsofmeasure.org";
/// LOINC as republished by the French NOS: MES requires it for blood glucose and its moments.
pub const NOS_LOINC: &str = "https://mos.esante.gouv.fr/NOS/TRE_A04-Loinc/FHIR/TRE-A04-Loinc";
pub const NOS_TAASIP: &str = "https://mos.esante.gouv.fr/NOS/TRE_R308-TAASIP/FHIR/TRE-R308-TAASIP";
/// Anatomy (FMA) as republished by the NOS: the body sites of JDV J149 and J151.
pub const NOS_FMA: &str = "https://mos.esante.gouv.fr/NOS/TRE_R309-FMA/FHIR/TRE-R309-FMA";
pub const OBSERVATION_CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/observation-category";
/// IEEE 11073-10101 nomenclature (MDC).
pub const MDC: &str = "urn:iso:std:iso:11073:10101";
pub const CONTINUA_DEVICE_IDENTIFIERS: &str =
    "http://hl7.org/fhir/uv/phd/CodeSystem/ContinuaDeviceIdentifiers";
/// The OID of IEEE EUI-64 identifiers, the system of a PHD's System ID.
pub const IEEE_EUI64_OID: &str = "1.2.840.10004.1.1.1.0.0.1.0.0.1.2680";
pub const BLUETOOTH_EUI48: &str = "http://hl7.org/fhir/sid/eui-48/bluetooth";
pub const PHD_DEVICE_PROFILE: &str = "http://hl7.org/fhir/uv/phd/StructureDefinition/PhdDevice";
/// MDC_MOC_VMS_MDS_SIMP: the `Device.type` of every personal health device.
pub const MDC_PERSONAL_HEALTH_DEVICE: &str = "65573";

/// The ANS extensions. MES spec v1.5.2 lists these URLs whatever the profile generation, so
/// every flavour uses them.
pub const EXT_MOMENT_OF_MEASUREMENT: &str = "https://interop.esante.gouv.fr/ig/fhir/mesures/StructureDefinition/mesures-moment-of-measurement";
pub const EXT_NUMBER_OF_DAYS: &str =
    "https://interop.esante.gouv.fr/ig/fhir/mesures/StructureDefinition/mesures-number-of-days";

/// One FHIR Coding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Coding {
    pub system: &'static str,
    pub code: &'static str,
    pub display: Option<&'static str>,
}

impl Coding {
    pub const fn new(system: &'static str, code: &'static str) -> Self {
        Self {
            system,
            code,
            display: None,
        }
    }

    pub const fn with_display(
        system: &'static str,
        code: &'static str,
        display: &'static str,
    ) -> Self {
        Self {
            system,
            code,
            display: Some(display),
        }
    }

    /// `{"system", "code"[, "display"]}`.
    pub fn to_json(self) -> Value {
        match self.display {
            Some(display) => json!({"system": self.system, "code": self.code, "display": display}),
            None => json!({"system": self.system, "code": self.code}),
        }
    }

    /// A CodeableConcept holding only this coding.
    pub fn concept(self) -> Value {
        json!({"coding": [self.to_json()]})
    }
}

// Observation codes (table 1.2 and §1.4).
pub const BODY_WEIGHT: Coding = Coding::with_display(
    LOINC,
    "29463-7",
    "Poids corporel [Masse] Patient ; Numérique",
);
pub const BODY_HEIGHT: Coding = Coding::new(LOINC, "8302-2");
pub const WAIST_CIRCUMFERENCE: Coding = Coding::new(LOINC, "8280-0");
pub const BLOOD_PRESSURE_PANEL: Coding = Coding::new(LOINC, "85354-9");
pub const SYSTOLIC: Coding = Coding::with_display(LOINC, "8480-6", "Systolic blood pressure");
pub const DIASTOLIC: Coding = Coding::with_display(LOINC, "8462-4", "Diastolic blood pressure");
pub const HEART_RATE: Coding = Coding::new(LOINC, "8867-4");
pub const BODY_TEMPERATURE: Coding = Coding::new(LOINC, "8310-5");
pub const OXYGEN_SATURATION: Coding = Coding::new(LOINC, "2708-6");
pub const BLOOD_GLUCOSE: Coding = Coding::with_display(NOS_LOINC, "2345-7", "Glucose sanguin");
pub const INTERSTITIAL_GLUCOSE: Coding =
    Coding::with_display(NOS_TAASIP, "MED-969", "Glucose interstitiel");
pub const GLUCOSE_MANAGEMENT_INDICATOR: Coding =
    Coding::with_display(NOS_TAASIP, "MED-972", "Index de gestion de glycémie (IGG)");

pub const VITAL_SIGNS: Coding = Coding::new(OBSERVATION_CATEGORY, "vital-signs");

// Body sites: JDV J149 (blood pressure) and J151 (temperature), both in TRE_R309-FMA.
pub const SITE_ARM: Coding = Coding::with_display(NOS_FMA, "24890", "Bras");
pub const SITE_WRIST: Coding = Coding::with_display(NOS_FMA, "24922", "Poignet");
pub const SITE_RECTUM: Coding = Coding::with_display(NOS_FMA, "14544", "Rectum");
pub const SITE_MOUTH: Coding = Coding::with_display(NOS_FMA, "49184", "Bouche");
pub const SITE_EAR: Coding = Coding::with_display(NOS_FMA, "52780", "Oreille");
pub const SITE_ARMPIT: Coding = Coding::with_display(NOS_FMA, "24864", "Aisselle");

// Moments of a blood glucose measurement: JDV J157.
pub const MOMENT_BEFORE_MEAL: Coding = Coding::with_display(NOS_LOINC, "88365-2", "Avant repas");
pub const MOMENT_AFTER_MEAL: Coding =
    Coding::with_display(NOS_LOINC, "16915-1", "Glucose post prandial");
pub const MOMENT_FASTING: Coding = Coding::with_display(NOS_LOINC, "53049-3", "Glucose à jeun");
pub const MOMENT_OTHER: Coding = Coding::with_display(NOS_LOINC, "LA46-8", "Autre");

// Numbers of days of a CGM aggregate: JDV J164.
pub const DAYS_7: Coding = Coding::with_display(NOS_TAASIP, "GEN-275", "7j");
pub const DAYS_14: Coding = Coding::with_display(NOS_TAASIP, "GEN-276", "14j");
pub const DAYS_30: Coding = Coding::with_display(NOS_TAASIP, "GEN-277", "30j");
pub const DAYS_90: Coding = Coding::with_display(NOS_TAASIP, "GEN-278", "90j");

/// Which generation of canonical URLs `Observation.meta.profile` carries (reference §0). Which
/// one production MES accepts is not public, hence a setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ProfileFlavour {
    /// ANS IG 3.x, `https://interop.esante.gouv.fr/ig/fhir/mesures/...`.
    #[default]
    Ans,
    /// The MES-own profiles of spec v1.5.2, `https://fhir.monespacesante.fr/ref/mesure/...`.
    Mes,
    /// The ENS / CI-SIS v1.2 profiles of the spec's examples, `http://esante.gouv.fr/ci-sis/...`.
    Ens,
}

impl ProfileFlavour {
    pub const ALL: [ProfileFlavour; 3] = [Self::Ans, Self::Mes, Self::Ens];

    pub const fn name(self) -> &'static str {
        match self {
            Self::Ans => "ans",
            Self::Mes => "mes",
            Self::Ens => "ens",
        }
    }
}

impl fmt::Display for ProfileFlavour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A profile flavour name that is not `ans`, `mes` or `ens`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown profile flavour `{0}` (expected ans, mes or ens)")]
pub struct UnknownFlavour(pub String);

impl FromStr for ProfileFlavour {
    type Err = UnknownFlavour;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownFlavour(s.to_owned()))
    }
}

/// The measures relais sends, one Observation profile each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MeasureKind {
    BodyWeight,
    BodyHeight,
    WaistCircumference,
    BloodPressure,
    HeartRate,
    BloodGlucose,
    /// Mean interstitial glucose over a number of days (CGM aggregate).
    InterstitialGlucose,
    /// Glucose management indicator over a number of days (CGM aggregate).
    GlucoseManagementIndicator,
    BodyTemperature,
    OxygenSaturation,
}

impl MeasureKind {
    pub const fn name(self) -> &'static str {
        match self {
            Self::BodyWeight => "body weight",
            Self::BodyHeight => "body height",
            Self::WaistCircumference => "waist circumference",
            Self::BloodPressure => "blood pressure",
            Self::HeartRate => "heart rate",
            Self::BloodGlucose => "blood glucose",
            Self::InterstitialGlucose => "mean interstitial glucose",
            Self::GlucoseManagementIndicator => "glucose management indicator",
            Self::BodyTemperature => "body temperature",
            Self::OxygenSaturation => "oxygen saturation",
        }
    }

    /// The Observation code.
    pub const fn code(self) -> Coding {
        match self {
            Self::BodyWeight => BODY_WEIGHT,
            Self::BodyHeight => BODY_HEIGHT,
            Self::WaistCircumference => WAIST_CIRCUMFERENCE,
            Self::BloodPressure => BLOOD_PRESSURE_PANEL,
            Self::HeartRate => HEART_RATE,
            Self::BloodGlucose => BLOOD_GLUCOSE,
            Self::InterstitialGlucose => INTERSTITIAL_GLUCOSE,
            Self::GlucoseManagementIndicator => GLUCOSE_MANAGEMENT_INDICATOR,
            Self::BodyTemperature => BODY_TEMPERATURE,
            Self::OxygenSaturation => OXYGEN_SATURATION,
        }
    }

    /// The UCUM unit of the value (of each component for blood pressure).
    pub const fn ucum(self) -> &'static str {
        match self {
            Self::BodyWeight => "kg",
            Self::BodyHeight | Self::WaistCircumference => "cm",
            Self::BloodPressure => "mm[Hg]",
            Self::HeartRate => "/min",
            Self::BloodGlucose | Self::InterstitialGlucose => "mg/dL",
            Self::GlucoseManagementIndicator | Self::OxygenSaturation => "%",
            Self::BodyTemperature => "Cel",
        }
    }

    /// The canonical URL of this measure's profile in `flavour`; `None` where that generation
    /// has no profile for it (oxygen saturation exists only in the ANS 3.x IG: the MES-own and
    /// ENS lists of spec v1.5.2 have eleven profiles and no SpO2).
    pub const fn profile(self, flavour: ProfileFlavour) -> Option<&'static str> {
        use MeasureKind::*;
        use ProfileFlavour::*;
        Some(match (flavour, self) {
            (Ans, BodyWeight) => {
                "https://interop.esante.gouv.fr/ig/fhir/mesures/StructureDefinition/mesures-fr-observation-body-weight"
            }
            (Ans, BodyHeight) => {
                "https://interop.esante.gouv.fr/ig/fhir/mesures/StructureDefinition/mesures-fr-observation-bodyheight"
            }
            (Ans, WaistCircumference) => {
                "https://interop.esante.gouv.fr/ig/fhir/mesures/StructureDefinition/mesures-observation-waist-circumference"
            }
            (Ans, BloodPressure) => {
                "https://interop.esante.gouv.fr/ig/fhir/mesures/StructureDefinition/mesures-fr-observation-bp"
            }
            (Ans, HeartRate) => {
                "https://interop.esante.gouv.fr/ig/fhir/mesures/StructureDefinition/mesures-fr-observation-heartrate"
            }
            (Ans, BloodGlucose | InterstitialGlucose | GlucoseManagementIndicator) => {
                "https://interop.esante.gouv.fr/ig/fhir/mesures/StructureDefinition/mesures-observation-glucose"
            }
            (Ans, BodyTemperature) => {
                "https://interop.esante.gouv.fr/ig/fhir/mesures/StructureDefinition/mesures-fr-observation-body-temperature"
            }
            (Ans, OxygenSaturation) => {
                "https://interop.esante.gouv.fr/ig/fhir/mesures/StructureDefinition/mesures-fr-observation-oxygen-sat"
            }
            (Mes, BodyWeight) => {
                "https://fhir.monespacesante.fr/ref/mesure/StructureDefinition/mes-observation-bodyweight"
            }
            (Mes, BodyHeight) => {
                "https://fhir.monespacesante.fr/ref/mesure/StructureDefinition/mes-observation-bodyheight"
            }
            (Mes, WaistCircumference) => {
                "https://fhir.monespacesante.fr/ref/mesure/StructureDefinition/mes-observation-waistcircumference"
            }
            (Mes, BloodPressure) => {
                "https://fhir.monespacesante.fr/ref/mesure/StructureDefinition/mes-observation-bp"
            }
            (Mes, HeartRate) => {
                "https://fhir.monespacesante.fr/ref/mesure/StructureDefinition/mes-observation-heartrate"
            }
            (Mes, BloodGlucose | InterstitialGlucose | GlucoseManagementIndicator) => {
                "https://fhir.monespacesante.fr/ref/mesure/StructureDefinition/mes-observation-glucose"
            }
            (Mes, BodyTemperature) => {
                "https://fhir.monespacesante.fr/ref/mesure/StructureDefinition/mes-observation-bodytemperature"
            }
            (Ens, BodyWeight) => {
                "http://esante.gouv.fr/ci-sis/fhir/StructureDefinition/ENS_FrObservationBodyWeight"
            }
            (Ens, BodyHeight) => {
                "http://esante.gouv.fr/ci-sis/fhir/StructureDefinition/ENS_FrObservationBodyHeight"
            }
            (Ens, WaistCircumference) => {
                "http://esante.gouv.fr/ci-sis/fhir/StructureDefinition/ENS_ObservationWaistCircumference"
            }
            (Ens, BloodPressure) => {
                "http://esante.gouv.fr/ci-sis/fhir/StructureDefinition/ENS_FrObservationBp"
            }
            (Ens, HeartRate) => {
                "http://esante.gouv.fr/ci-sis/fhir/StructureDefinition/ENS_FrObservationHeartrate"
            }
            (Ens, BloodGlucose | InterstitialGlucose | GlucoseManagementIndicator) => {
                "http://esante.gouv.fr/ci-sis/fhir/StructureDefinition/ENS_ObservationGlucose"
            }
            (Ens, BodyTemperature) => {
                "http://esante.gouv.fr/ci-sis/fhir/StructureDefinition/ENS_FrObservationBodyTemperature"
            }
            (Mes | Ens, OxygenSaturation) => return None,
        })
    }
}

impl fmt::Display for MeasureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KINDS: [MeasureKind; 10] = [
        MeasureKind::BodyWeight,
        MeasureKind::BodyHeight,
        MeasureKind::WaistCircumference,
        MeasureKind::BloodPressure,
        MeasureKind::HeartRate,
        MeasureKind::BloodGlucose,
        MeasureKind::InterstitialGlucose,
        MeasureKind::GlucoseManagementIndicator,
        MeasureKind::BodyTemperature,
        MeasureKind::OxygenSaturation,
    ];

    #[test]
    fn each_flavour_uses_its_own_url_generation() {
        for kind in KINDS {
            let ans = kind.profile(ProfileFlavour::Ans).unwrap();
            assert!(
                ans.starts_with(
                    "https://interop.esante.gouv.fr/ig/fhir/mesures/StructureDefinition/mesures-"
                ),
                "{ans}"
            );
            if let Some(mes) = kind.profile(ProfileFlavour::Mes) {
                assert!(mes.starts_with(
                    "https://fhir.monespacesante.fr/ref/mesure/StructureDefinition/mes-observation-"
                ));
            }
            if let Some(ens) = kind.profile(ProfileFlavour::Ens) {
                assert!(
                    ens.starts_with("http://esante.gouv.fr/ci-sis/fhir/StructureDefinition/ENS_")
                );
            }
        }
    }

    #[test]
    fn only_oxygen_saturation_lacks_a_profile_outside_the_ans_ig() {
        for kind in KINDS {
            for flavour in [ProfileFlavour::Mes, ProfileFlavour::Ens] {
                assert_eq!(
                    kind.profile(flavour).is_none(),
                    kind == MeasureKind::OxygenSaturation,
                    "{kind} in {flavour}"
                );
            }
        }
    }

    #[test]
    fn flavour_names_parse_back() {
        for f in ProfileFlavour::ALL {
            assert_eq!(f.name().parse::<ProfileFlavour>(), Ok(f));
        }
        assert_eq!("ANS".parse::<ProfileFlavour>(), Ok(ProfileFlavour::Ans));
        assert!("fhir".parse::<ProfileFlavour>().is_err());
        assert_eq!(ProfileFlavour::default(), ProfileFlavour::Ans);
    }

    #[test]
    fn glucose_codes_live_in_the_nos_systems() {
        assert_eq!(BLOOD_GLUCOSE.system, NOS_LOINC);
        assert_eq!(INTERSTITIAL_GLUCOSE.system, NOS_TAASIP);
        assert_eq!(GLUCOSE_MANAGEMENT_INDICATOR.system, NOS_TAASIP);
        for moment in [
            MOMENT_BEFORE_MEAL,
            MOMENT_AFTER_MEAL,
            MOMENT_FASTING,
            MOMENT_OTHER,
        ] {
            assert_eq!(moment.system, NOS_LOINC);
        }
    }
}
