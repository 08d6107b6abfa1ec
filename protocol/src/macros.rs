//! Two small macros for the shapes the SIG specifications repeat everywhere: one-byte enumerations
//! with reserved values, and bit fields of named booleans.

/// An enumeration coded on the wire as an integer. Codes the specification does not define
/// decode to `Reserved(code)` rather than failing, so the raw value is never lost.
macro_rules! code_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident: $repr:ty {
            $( $(#[$vmeta:meta])* $variant:ident = $code:literal => $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        $vis enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A code the specification reserves.
            Reserved($repr),
        }

        impl $name {
            /// Every defined variant, in code order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub const fn from_code(code: $repr) -> Self {
                match code {
                    $( $code => Self::$variant, )+
                    other => Self::Reserved(other),
                }
            }

            pub const fn code(self) -> $repr {
                match self {
                    $( Self::$variant => $code, )+
                    Self::Reserved(other) => other,
                }
            }

            /// snake_case name, as printed in JSON; `reserved` for reserved codes.
            pub const fn name(self) -> &'static str {
                match self {
                    $( Self::$variant => $text, )+
                    Self::Reserved(_) => "reserved",
                }
            }
        }

        impl ::core::fmt::Display for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                match self {
                    Self::Reserved(code) => write!(f, "reserved ({code})"),
                    other => f.write_str(other.name()),
                }
            }
        }

        #[cfg(feature = "serde")]
        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.name())
            }
        }
    };
}

/// A bit field as a struct of named booleans. Bits not listed are reserved: `from_bits` ignores
/// them and `bits` leaves them clear.
macro_rules! bit_flags {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident: $repr:ty {
            $( $(#[$fmeta:meta])* $field:ident = $bit:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
        #[cfg_attr(feature = "serde", derive(::serde::Serialize))]
        $vis struct $name {
            $( $(#[$fmeta])* pub $field: bool, )+
        }

        impl $name {
            /// The bits this struct names.
            pub const DEFINED: $repr = 0 $( | (1 << $bit) )+;

            pub const fn from_bits(bits: $repr) -> Self {
                Self { $( $field: bits & (1 << $bit) != 0, )+ }
            }

            pub const fn bits(&self) -> $repr {
                0 $( | ((self.$field as $repr) << $bit) )+
            }
        }
    };
}

pub(crate) use bit_flags;
pub(crate) use code_enum;
