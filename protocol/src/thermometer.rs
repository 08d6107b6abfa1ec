//! Health Thermometer (0x1809): Temperature Measurement, Temperature Type, Intermediate
//! Temperature.

use crate::macros::code_enum;

code_enum! {
    /// Where the temperature was taken (field of 0x2A1C and characteristic 0x2A1D).
    pub enum TemperatureType: u8 {
        Armpit = 1 => "armpit",
        Body = 2 => "body",
        Ear = 3 => "ear",
        Finger = 4 => "finger",
        GastrointestinalTract = 5 => "gastrointestinal_tract",
        Mouth = 6 => "mouth",
        Rectum = 7 => "rectum",
        Toe = 8 => "toe",
        Tympanum = 9 => "tympanum",
    }
}
