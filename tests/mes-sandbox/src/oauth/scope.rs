//! Scopes of the sandbox: `openid` (required, for the id_token), `mesures.read` and
//! `mesures.write`, one per consent MES checks. The real scope names are not public.

use std::fmt;

/// The scope that asks for the id_token.
pub const OPENID: &str = "openid";
/// Reading measures.
pub const READ: &str = "mesures.read";
/// Writing measures.
pub const WRITE: &str = "mesures.write";

/// A parsed scope (openid implied).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Scope {
    pub(crate) read: bool,
    pub(crate) write: bool,
}

/// Why a scope is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ScopeError {
    Missing,
    Unknown(String),
    NoOpenId,
    NoAccess,
}

impl Scope {
    /// Parses a space-separated scope.
    pub(crate) fn parse(scope: Option<&str>) -> Result<Self, ScopeError> {
        let scope = scope
            .filter(|s| !s.trim().is_empty())
            .ok_or(ScopeError::Missing)?;
        let mut openid = false;
        let mut parsed = Scope::default();
        for token in scope.split_ascii_whitespace() {
            match token {
                OPENID => openid = true,
                READ => parsed.read = true,
                WRITE => parsed.write = true,
                other => return Err(ScopeError::Unknown(other.to_owned())),
            }
        }
        if !openid {
            return Err(ScopeError::NoOpenId);
        }
        if !parsed.read && !parsed.write {
            return Err(ScopeError::NoAccess);
        }
        Ok(parsed)
    }

    /// Whether every access of `self` is also in `other`.
    pub(crate) fn within(&self, other: &Scope) -> bool {
        (!self.read || other.read) && (!self.write || other.write)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(OPENID)?;
        if self.read {
            write!(f, " {READ}")?;
        }
        if self.write {
            write!(f, " {WRITE}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_needs_openid_and_some_access() {
        assert_eq!(
            Scope::parse(Some("openid mesures.write")),
            Ok(Scope {
                read: false,
                write: true
            })
        );
        assert_eq!(
            Scope::parse(Some("mesures.read")),
            Err(ScopeError::NoOpenId)
        );
        assert_eq!(Scope::parse(Some("openid")), Err(ScopeError::NoAccess));
        assert_eq!(Scope::parse(None), Err(ScopeError::Missing));
        assert_eq!(
            Scope::parse(Some("openid profile")),
            Err(ScopeError::Unknown("profile".into()))
        );
    }

    #[test]
    fn scope_renders_back() {
        let s = Scope::parse(Some("mesures.write openid mesures.read")).unwrap();
        assert_eq!(s.to_string(), "openid mesures.read mesures.write");
    }
}
