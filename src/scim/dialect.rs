//! Which identity provider is speaking, and the deviations from RFC 7643/7644 we tolerate.
//!
//! Tolerance functions record every deviation they let through in a `&mut Vec<Quirk>`
//! so the server can count them in a metric. In [`Dialect::Strict`] a deviation is a
//! 400 unless [`Quirk::allowed_in_strict`] says an RFC-compliant server should accept it.

use crate::scim::error::ScimError;

/// The SCIM dialect configured for a provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// RFC 7643/7644 as written.
    Strict,
    /// Microsoft Entra ID provisioning service.
    Entra,
    /// Okta.
    Okta,
}

impl Dialect {
    /// True for dialects that tolerate known IdP deviations.
    pub fn is_lenient(self) -> bool {
        !matches!(self, Dialect::Strict)
    }
}

/// One tolerated deviation from the RFCs (or a notable RFC-legal input worth counting).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Quirk {
    /// PATCH op spelled `Replace`/`Add`/`Remove` (Entra without aadOptscim062020).
    CapitalisedOp,
    /// Boolean sent as the string `"True"`/`"False"`.
    BooleanAsString,
    /// A number or boolean sent for a string attribute.
    ScalarAsString,
    /// A bare string sent for a complex attribute with a `value` sub-attribute (Entra manager).
    BareStringForComplex,
    /// Path-less PATCH value keyed by a dotted path such as `name.givenName`.
    DottedKeyInValue,
    /// `remove` on a multi-valued attribute with a value list (Entra legacy member removal).
    RemoveWithValueList,
    /// `add` to a filtered path whose element does not exist created the element.
    AddToMissingFilteredElement,
    /// `replace` to a filtered path whose element does not exist created the element.
    ReplaceMissingFilteredElement,
    /// `remove` with a value filter that matched nothing was treated as a no-op.
    RemoveMatchedNothing,
    /// `+` used for a space in a filter outside string literals.
    PlusAsSpace,
    /// An attribute unknown to the schema was dropped or ignored: its name as sent
    /// (`parent.sub` for a sub-attribute), so the operator can be told which.
    UnknownAttributeIgnored(String),
    /// A single value sent for a multi-valued attribute was wrapped in an array.
    SingleValueWrapped,
    /// The `schemas` attribute was missing or wrong and was rebuilt.
    SchemasFixed,
    /// A password was sent and dropped; we never store it.
    PasswordIgnored,
    /// A PATCH value carried `id` (or another read-only value) equal to the stored one (Okta rename).
    ReadOnlyValueUnchanged,
    /// A PATCH body without the PatchOp schema URN.
    PatchSchemaMissing,
}

impl Quirk {
    /// snake_case label used as a metric label value.
    pub fn as_str(&self) -> &'static str {
        match self {
            Quirk::CapitalisedOp => "capitalised_op",
            Quirk::BooleanAsString => "boolean_as_string",
            Quirk::ScalarAsString => "scalar_as_string",
            Quirk::BareStringForComplex => "bare_string_for_complex",
            Quirk::DottedKeyInValue => "dotted_key_in_value",
            Quirk::RemoveWithValueList => "remove_with_value_list",
            Quirk::AddToMissingFilteredElement => "add_to_missing_filtered_element",
            Quirk::ReplaceMissingFilteredElement => "replace_missing_filtered_element",
            Quirk::RemoveMatchedNothing => "remove_matched_nothing",
            Quirk::PlusAsSpace => "plus_as_space",
            Quirk::UnknownAttributeIgnored(_) => "unknown_attribute_ignored",
            Quirk::SingleValueWrapped => "single_value_wrapped",
            Quirk::SchemasFixed => "schemas_fixed",
            Quirk::PasswordIgnored => "password_ignored",
            Quirk::ReadOnlyValueUnchanged => "read_only_value_unchanged",
            Quirk::PatchSchemaMissing => "patch_schema_missing",
        }
    }

    /// Whether a strict (RFC-only) server accepts this input too.
    ///
    /// - `CapitalisedOp`: RFC 7644 treats protocol keywords case-insensitively.
    /// - `RemoveWithValueList`: the alternative readings are "remove everything" (data loss)
    ///   or rejecting a request whose intent is unambiguous; removing only the listed values is safe.
    /// - `AddToMissingFilteredElement`: RFC 7644 §3.5.2.1 says add creates a target that does not exist.
    /// - `PasswordIgnored`: sending a password is legal; not storing it is our policy.
    /// - `ReadOnlyValueUnchanged`: writing the value a read-only attribute already has changes nothing.
    pub fn allowed_in_strict(&self) -> bool {
        matches!(
            self,
            Quirk::CapitalisedOp
                | Quirk::RemoveWithValueList
                | Quirk::AddToMissingFilteredElement
                | Quirk::PasswordIgnored
                | Quirk::ReadOnlyValueUnchanged
        )
    }
}

/// Records `quirk` if `dialect` tolerates it, else returns `err` (built lazily).
pub fn tolerate(
    dialect: Dialect,
    quirk: Quirk,
    quirks: &mut Vec<Quirk>,
    err: impl FnOnce() -> ScimError,
) -> Result<(), ScimError> {
    if dialect.is_lenient() || quirk.allowed_in_strict() {
        quirks.push(quirk);
        Ok(())
    } else {
        Err(err())
    }
}

/// Turns `+` outside string literals into spaces (Entra sends `userName+eq+"x"` when a
/// proxy decoded the query without form semantics). Strict leaves the text alone, so the
/// parser reports the stray `+`.
pub fn normalize_filter_text(raw: &str, dialect: Dialect, quirks: &mut Vec<Quirk>) -> String {
    if !dialect.is_lenient() || !raw.contains('+') {
        return raw.to_string();
    }
    let mut out = String::with_capacity(raw.len());
    let mut in_str = false;
    let mut escaped = false;
    let mut changed = false;
    for c in raw.chars() {
        if in_str {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_str = false;
            }
            out.push(c);
        } else if c == '"' {
            in_str = true;
            out.push(c);
        } else if c == '+' && !after_exponent_marker(&out) {
            // `1e+5` is a JSON number, so a `+` right after a digit's exponent marker stays.
            out.push(' ');
            changed = true;
        } else {
            out.push(c);
        }
    }
    if changed {
        quirks.push(Quirk::PlusAsSpace);
    }
    out
}

fn after_exponent_marker(out: &str) -> bool {
    let mut rev = out.chars().rev();
    matches!(rev.next(), Some('e' | 'E')) && rev.next().is_some_and(|d| d.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plus_becomes_space_outside_strings() {
        let cases = [
            (
                Dialect::Entra,
                r#"userName+eq+"a+b""#,
                r#"userName eq "a+b""#,
                true,
            ),
            (
                Dialect::Okta,
                r#"userName eq "x""#,
                r#"userName eq "x""#,
                false,
            ),
            (
                Dialect::Strict,
                r#"userName+eq+"x""#,
                r#"userName+eq+"x""#,
                false,
            ),
            (Dialect::Entra, r#"x+eq+"\"+""#, r#"x eq "\"+""#, true),
        ];
        for (d, input, want, quirk) in cases {
            let mut q = Vec::new();
            assert_eq!(normalize_filter_text(input, d, &mut q), want, "{input}");
            assert_eq!(q.contains(&Quirk::PlusAsSpace), quirk, "{input}");
        }
    }

    #[test]
    fn strict_rejects_only_non_rfc_quirks() {
        let mut q = Vec::new();
        assert!(
            tolerate(Dialect::Strict, Quirk::CapitalisedOp, &mut q, || {
                ScimError::invalid_syntax("x")
            })
            .is_ok()
        );
        assert!(
            tolerate(Dialect::Strict, Quirk::BooleanAsString, &mut q, || {
                ScimError::invalid_value("x")
            })
            .is_err()
        );
        assert!(
            tolerate(Dialect::Entra, Quirk::BooleanAsString, &mut q, || {
                ScimError::invalid_value("x")
            })
            .is_ok()
        );
        assert_eq!(q, vec![Quirk::CapitalisedOp, Quirk::BooleanAsString]);
        assert_eq!(Quirk::BooleanAsString.as_str(), "boolean_as_string");
    }
}
