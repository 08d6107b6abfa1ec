//! Glucose Service (0x1808): Glucose Measurement, Glucose Measurement Context, Glucose Feature.

use crate::macros::code_enum;

code_enum! {
    /// Type of the sample (low nibble of the Type-Sample Location octet).
    pub enum GlucoseType: u8 {
        CapillaryWholeBlood = 1 => "capillary_whole_blood",
        CapillaryPlasma = 2 => "capillary_plasma",
        VenousWholeBlood = 3 => "venous_whole_blood",
        VenousPlasma = 4 => "venous_plasma",
        ArterialWholeBlood = 5 => "arterial_whole_blood",
        ArterialPlasma = 6 => "arterial_plasma",
        UndeterminedWholeBlood = 7 => "undetermined_whole_blood",
        UndeterminedPlasma = 8 => "undetermined_plasma",
        InterstitialFluid = 9 => "interstitial_fluid",
        ControlSolution = 10 => "control_solution",
    }
}

code_enum! {
    /// Sample location (high nibble of the Type-Sample Location octet).
    pub enum GlucoseSampleLocation: u8 {
        Finger = 1 => "finger",
        AlternateSiteTest = 2 => "alternate_site_test",
        Earlobe = 3 => "earlobe",
        ControlSolution = 4 => "control_solution",
        NotAvailable = 15 => "not_available",
    }
}

code_enum! {
    /// Meal of the Glucose Measurement Context.
    pub enum Meal: u8 {
        Preprandial = 1 => "preprandial",
        Postprandial = 2 => "postprandial",
        Fasting = 3 => "fasting",
        Casual = 4 => "casual",
        Bedtime = 5 => "bedtime",
    }
}

code_enum! {
    /// Tester (low nibble of the Tester-Health octet).
    pub enum Tester: u8 {
        SelfTest = 1 => "self",
        HealthCareProfessional = 2 => "health_care_professional",
        LabTest = 3 => "lab_test",
        NotAvailable = 15 => "not_available",
    }
}

code_enum! {
    /// Health (high nibble of the Tester-Health octet).
    pub enum Health: u8 {
        MinorHealthIssues = 1 => "minor_health_issues",
        MajorHealthIssues = 2 => "major_health_issues",
        DuringMenses = 3 => "during_menses",
        UnderStress = 4 => "under_stress",
        NoHealthIssues = 5 => "no_health_issues",
        NotAvailable = 15 => "not_available",
    }
}
