//! RFC 7643 schema model and the registry of schemas served by this bridge.

use crate::scim::path::AttrPath;

/// Core User schema URN.
pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// Core Group schema URN.
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
/// Enterprise User extension URN.
pub const ENTERPRISE_USER_SCHEMA: &str =
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// PATCH request message URN.
pub const PATCH_OP_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
/// List response message URN.
pub const LIST_RESPONSE_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";

/// RFC 7643 §2.3 attribute data types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttrType {
    /// Unicode string.
    String,
    /// true/false.
    Boolean,
    /// Real number.
    Decimal,
    /// Whole number.
    Integer,
    /// xsd:dateTime string.
    DateTime,
    /// URI reference string.
    Reference,
    /// base64 string.
    Binary,
    /// Object of sub-attributes.
    Complex,
}

impl AttrType {
    /// The RFC 7643 §7 spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AttrType::String => "string",
            AttrType::Boolean => "boolean",
            AttrType::Decimal => "decimal",
            AttrType::Integer => "integer",
            AttrType::DateTime => "dateTime",
            AttrType::Reference => "reference",
            AttrType::Binary => "binary",
            AttrType::Complex => "complex",
        }
    }
}

/// RFC 7643 §7 `mutability`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mutability {
    /// Never written by clients.
    ReadOnly,
    /// Freely written.
    ReadWrite,
    /// Written once, then fixed.
    Immutable,
    /// Written but never returned.
    WriteOnly,
}

impl Mutability {
    /// The RFC 7643 §7 spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Mutability::ReadOnly => "readOnly",
            Mutability::ReadWrite => "readWrite",
            Mutability::Immutable => "immutable",
            Mutability::WriteOnly => "writeOnly",
        }
    }
}

/// RFC 7643 §7 `returned`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Returned {
    /// Always returned, whatever `attributes`/`excludedAttributes` say.
    Always,
    /// Never returned.
    Never,
    /// Returned unless excluded.
    Default,
    /// Returned only when asked for.
    Request,
}

impl Returned {
    /// The RFC 7643 §7 spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Returned::Always => "always",
            Returned::Never => "never",
            Returned::Default => "default",
            Returned::Request => "request",
        }
    }
}

/// RFC 7643 §7 `uniqueness`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Uniqueness {
    /// No uniqueness.
    None,
    /// Unique within this server.
    Server,
    /// Globally unique.
    Global,
}

impl Uniqueness {
    /// The RFC 7643 §7 spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Uniqueness::None => "none",
            Uniqueness::Server => "server",
            Uniqueness::Global => "global",
        }
    }
}

/// One attribute definition (RFC 7643 §7).
#[derive(Debug, Clone, PartialEq)]
pub struct Attribute {
    /// Attribute name, in its canonical spelling.
    pub name: String,
    /// Data type.
    pub attr_type: AttrType,
    /// Whether values are arrays.
    pub multi_valued: bool,
    /// Human description.
    pub description: String,
    /// Whether a value is required.
    pub required: bool,
    /// Whether string comparison is case-sensitive.
    pub case_exact: bool,
    /// Who may write it.
    pub mutability: Mutability,
    /// When it is returned.
    pub returned: Returned,
    /// Uniqueness constraint.
    pub uniqueness: Uniqueness,
    /// Suggested (or, with `enforce_canonical`, the only) values.
    pub canonical_values: Vec<String>,
    /// Reject values not in `canonical_values` (an extension of RFC 7643, which only suggests).
    pub enforce_canonical: bool,
    /// For references: the resource types referenced.
    pub reference_types: Vec<String>,
    /// For complex attributes: the sub-attributes.
    pub sub_attributes: Vec<Attribute>,
    /// How values are checked and compared beyond `case_exact`.
    pub rule: ValueRule,
}

/// A value rule beyond RFC 7643's attribute characteristics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum ValueRule {
    /// Only the type and `case_exact`.
    #[default]
    Plain,
    /// The core `userName`: refused when blank, too long or holding control or format
    /// characters, and compared by [`crate::scim::username::comparison_key`].
    UserName,
}

impl Attribute {
    /// A single-valued, optional, readWrite, case-insensitive string attribute named `name`.
    pub fn new(name: &str, attr_type: AttrType) -> Self {
        Attribute {
            name: name.to_string(),
            attr_type,
            multi_valued: false,
            description: String::new(),
            required: false,
            case_exact: false,
            mutability: Mutability::ReadWrite,
            returned: Returned::Default,
            uniqueness: Uniqueness::None,
            canonical_values: Vec::new(),
            enforce_canonical: false,
            reference_types: Vec::new(),
            sub_attributes: Vec::new(),
            rule: ValueRule::Plain,
        }
    }

    /// Sets the description.
    pub fn desc(mut self, d: &str) -> Self {
        self.description = d.to_string();
        self
    }
    /// Marks the attribute multi-valued.
    pub fn multi(mut self) -> Self {
        self.multi_valued = true;
        self
    }
    /// Marks the attribute required.
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }
    /// Marks string comparison case-sensitive.
    pub fn case_exact(mut self) -> Self {
        self.case_exact = true;
        self
    }
    /// Sets the mutability.
    pub fn mutability(mut self, m: Mutability) -> Self {
        self.mutability = m;
        self
    }
    /// Sets `returned`.
    pub fn returned(mut self, r: Returned) -> Self {
        self.returned = r;
        self
    }
    /// Sets uniqueness.
    pub fn uniqueness(mut self, u: Uniqueness) -> Self {
        self.uniqueness = u;
        self
    }
    /// Sets canonical values.
    pub fn canonical(mut self, values: &[&str]) -> Self {
        self.canonical_values = values.iter().map(|s| s.to_string()).collect();
        self
    }
    /// Sets the value rule.
    pub fn rule(mut self, rule: ValueRule) -> Self {
        self.rule = rule;
        self
    }
    /// Sets reference types.
    pub fn refs(mut self, types: &[&str]) -> Self {
        self.reference_types = types.iter().map(|s| s.to_string()).collect();
        self
    }
    /// Sets sub-attributes.
    pub fn subs(mut self, subs: Vec<Attribute>) -> Self {
        self.sub_attributes = subs;
        self
    }

    /// Looks a sub-attribute up by case-insensitive name.
    pub fn sub(&self, name: &str) -> Option<&Attribute> {
        self.sub_attributes
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
    }

    /// True for a multi-valued complex attribute (emails, members, ...).
    pub fn is_multi_complex(&self) -> bool {
        self.multi_valued && self.attr_type == AttrType::Complex
    }
}

/// One schema (RFC 7643 §7).
#[derive(Debug, Clone, PartialEq)]
pub struct Schema {
    /// Schema URN.
    pub id: String,
    /// Human name.
    pub name: String,
    /// Human description.
    pub description: String,
    /// Top-level attributes.
    pub attributes: Vec<Attribute>,
}

impl Schema {
    /// Looks a top-level attribute up by case-insensitive name.
    pub fn attr(&self, name: &str) -> Option<&Attribute> {
        self.attributes
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
    }
}

/// The resource types served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceKind {
    /// `/Users`.
    User,
    /// `/Groups`.
    Group,
}

impl ResourceKind {
    /// Resource type name (`User`, `Group`).
    pub fn name(self) -> &'static str {
        match self {
            ResourceKind::User => "User",
            ResourceKind::Group => "Group",
        }
    }
    /// Endpoint path relative to the SCIM base (`/Users`).
    pub fn endpoint(self) -> &'static str {
        match self {
            ResourceKind::User => "/Users",
            ResourceKind::Group => "/Groups",
        }
    }
    /// Core schema URN.
    pub fn core_schema(self) -> &'static str {
        match self {
            ResourceKind::User => USER_SCHEMA,
            ResourceKind::Group => GROUP_SCHEMA,
        }
    }

    /// A group member's `type`, compared without regard to ASCII case as clients
    /// send it (`"user"`, `"Group"`); `None` for anything else. Plural endpoint
    /// names are not member types.
    pub fn from_member_type(t: &str) -> Option<Self> {
        if t.eq_ignore_ascii_case("user") {
            Some(ResourceKind::User)
        } else if t.eq_ignore_ascii_case("group") {
            Some(ResourceKind::Group)
        } else {
            None
        }
    }
}

impl std::fmt::Display for ResourceKind {
    /// The resource type name (`User`, `Group`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not a resource type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown resource type {0:?} (expected User, Users, Group or Groups)")]
pub struct UnknownKind(pub String);

impl std::str::FromStr for ResourceKind {
    type Err = UnknownKind;

    /// The resource type name (`User`, as stored and as `meta.resourceType`) or its
    /// endpoint's (`Users`), exactly.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "User" | "Users" => Ok(ResourceKind::User),
            "Group" | "Groups" => Ok(ResourceKind::Group),
            other => Err(UnknownKind(other.to_owned())),
        }
    }
}

/// Errors while extending the registry from configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    /// The schema URN is not a `urn:` URN.
    #[error("schema id {0:?} is not a URN")]
    InvalidUrn(String),
    /// The attribute name is not a valid SCIM attribute name.
    #[error("attribute name {0:?} is not a valid SCIM attribute name")]
    InvalidName(String),
    /// The attribute already exists in that schema.
    #[error("attribute {name:?} already exists in {schema}")]
    Duplicate {
        /// Schema URN.
        schema: String,
        /// Attribute name.
        name: String,
    },
}

/// Where a path resolved to.
#[derive(Debug, Clone, Copy)]
pub struct Resolved<'a> {
    /// The schema the attribute belongs to.
    pub schema: &'a Schema,
    /// `Some(urn)` when the attribute lives under an extension key in resource JSON.
    pub extension: Option<&'a str>,
    /// The top-level attribute.
    pub attr: &'a Attribute,
    /// The sub-attribute, when the path named one that exists.
    pub sub: Option<&'a Attribute>,
}

/// All schemas, per resource type, with core first and extensions after.
#[derive(Debug, Clone)]
pub struct SchemaRegistry {
    user: Schema,
    group: Schema,
    common: Vec<Attribute>,
    user_extensions: Vec<Schema>,
    group_extensions: Vec<Schema>,
}

impl Default for SchemaRegistry {
    fn default() -> Self {
        Self::new()
    }
}

impl SchemaRegistry {
    /// Core User (with Enterprise extension) and Group schemas of RFC 7643.
    pub fn new() -> Self {
        SchemaRegistry {
            user: crate::scim::schema_core::user_schema(),
            group: crate::scim::schema_core::group_schema(),
            common: crate::scim::schema_core::common_attributes(),
            user_extensions: vec![crate::scim::schema_core::enterprise_schema()],
            group_extensions: Vec::new(),
        }
    }

    /// The core schema of `kind`.
    pub fn core(&self, kind: ResourceKind) -> &Schema {
        match kind {
            ResourceKind::User => &self.user,
            ResourceKind::Group => &self.group,
        }
    }

    /// The extension schemas registered on `kind`.
    pub fn extensions(&self, kind: ResourceKind) -> &[Schema] {
        match kind {
            ResourceKind::User => &self.user_extensions,
            ResourceKind::Group => &self.group_extensions,
        }
    }

    /// Every schema served at `/Schemas`.
    pub fn all(&self) -> Vec<&Schema> {
        let mut v = vec![&self.user, &self.group];
        v.extend(self.user_extensions.iter());
        v.extend(self.group_extensions.iter());
        v
    }

    /// Registers a whole extension schema on `kind` (a provider's custom schema).
    pub fn add_extension(&mut self, kind: ResourceKind, schema: Schema) -> Result<(), SchemaError> {
        if !schema.id.to_ascii_lowercase().starts_with("urn:") {
            return Err(SchemaError::InvalidUrn(schema.id));
        }
        if self
            .all()
            .iter()
            .any(|s| s.id.eq_ignore_ascii_case(&schema.id))
        {
            return Err(SchemaError::Duplicate {
                schema: schema.id.clone(),
                name: schema.id,
            });
        }
        for (i, a) in schema.attributes.iter().enumerate() {
            if !crate::scim::path::is_attr_name(&a.name) {
                return Err(SchemaError::InvalidName(a.name.clone()));
            }
            if schema.attributes[..i]
                .iter()
                .any(|b| b.name.eq_ignore_ascii_case(&a.name))
            {
                return Err(SchemaError::Duplicate {
                    schema: schema.id.clone(),
                    name: a.name.clone(),
                });
            }
        }
        match kind {
            ResourceKind::User => self.user_extensions.push(schema),
            ResourceKind::Group => self.group_extensions.push(schema),
        }
        Ok(())
    }

    /// Common attributes (`id`, `externalId`, `meta`) shared by every resource.
    pub fn common(&self) -> &[Attribute] {
        &self.common
    }

    /// Finds a schema of `kind` (core or extension) by case-insensitive URN.
    pub fn schema_for(&self, kind: ResourceKind, urn: &str) -> Option<&Schema> {
        let core = self.core(kind);
        if core.id.eq_ignore_ascii_case(urn) {
            return Some(core);
        }
        self.extensions(kind)
            .iter()
            .find(|s| s.id.eq_ignore_ascii_case(urn))
    }

    /// Finds an extension schema of `kind` by case-insensitive URN.
    pub fn extension_for(&self, kind: ResourceKind, urn: &str) -> Option<&Schema> {
        self.extensions(kind)
            .iter()
            .find(|s| s.id.eq_ignore_ascii_case(urn))
    }

    /// Adds a custom attribute to `schema_urn`: the core User/Group schema, an existing
    /// extension, or a new User extension created on the fly.
    pub fn add_attribute(&mut self, schema_urn: &str, attr: Attribute) -> Result<(), SchemaError> {
        if !schema_urn.to_ascii_lowercase().starts_with("urn:") {
            return Err(SchemaError::InvalidUrn(schema_urn.to_string()));
        }
        if !crate::scim::path::is_attr_name(&attr.name) {
            return Err(SchemaError::InvalidName(attr.name));
        }
        let is_core = self.user.id.eq_ignore_ascii_case(schema_urn)
            || self.group.id.eq_ignore_ascii_case(schema_urn);
        let clashes_common = is_core
            && self
                .common
                .iter()
                .any(|a| a.name.eq_ignore_ascii_case(&attr.name));
        let target = if self.user.id.eq_ignore_ascii_case(schema_urn) {
            &mut self.user
        } else if self.group.id.eq_ignore_ascii_case(schema_urn) {
            &mut self.group
        } else if let Some(pos) = self
            .user_extensions
            .iter()
            .position(|s| s.id.eq_ignore_ascii_case(schema_urn))
        {
            match self.user_extensions.get_mut(pos) {
                Some(s) => s,
                None => return Err(SchemaError::InvalidUrn(schema_urn.to_string())),
            }
        } else {
            let name = schema_urn
                .rsplit(':')
                .next()
                .unwrap_or(schema_urn)
                .to_string();
            self.user_extensions.push(Schema {
                id: schema_urn.to_string(),
                name,
                description: "Custom extension".to_string(),
                attributes: Vec::new(),
            });
            match self.user_extensions.last_mut() {
                Some(s) => s,
                None => return Err(SchemaError::InvalidUrn(schema_urn.to_string())),
            }
        };
        if clashes_common || target.attr(&attr.name).is_some() {
            return Err(SchemaError::Duplicate {
                schema: target.id.clone(),
                name: attr.name,
            });
        }
        target.attributes.push(attr);
        Ok(())
    }

    /// Resolves a path to its schema and attribute definitions.
    ///
    /// Unqualified names are looked up in the common attributes, the core schema, then
    /// extensions (clients such as Okta filter on extension attributes unqualified).
    pub fn resolve(&self, kind: ResourceKind, path: &AttrPath) -> Option<Resolved<'_>> {
        let core = self.core(kind);
        let (schema, attr) = match &path.schema {
            Some(urn) => {
                let schema = self.schema_for(kind, urn)?;
                let attr = schema.attr(&path.name).or_else(|| {
                    if std::ptr::eq(schema, core) {
                        self.common_attr(&path.name)
                    } else {
                        None
                    }
                })?;
                (schema, attr)
            }
            None => {
                if let Some(a) = self
                    .common_attr(&path.name)
                    .or_else(|| core.attr(&path.name))
                {
                    (core, a)
                } else {
                    self.extensions(kind)
                        .iter()
                        .find_map(|s| s.attr(&path.name).map(|a| (s, a)))?
                }
            }
        };
        let sub = match &path.sub {
            Some(s) => Some(attr.sub(s)?),
            None => None,
        };
        let extension = if std::ptr::eq(schema, core) {
            None
        } else {
            Some(schema.id.as_str())
        };
        Some(Resolved {
            schema,
            extension,
            attr,
            sub,
        })
    }

    /// The attribute a path designates (the sub-attribute when the path has one).
    pub fn find(&self, kind: ResourceKind, path: &AttrPath) -> Option<&Attribute> {
        self.resolve(kind, path).map(|r| r.sub.unwrap_or(r.attr))
    }

    fn common_attr(&self, name: &str) -> Option<&Attribute> {
        self.common
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
    }

    /// All URNs valid in the `schemas` attribute of a `kind` resource.
    pub fn schema_ids(&self, kind: ResourceKind) -> Vec<&str> {
        let mut v = vec![self.core(kind).id.as_str()];
        v.extend(self.extensions(kind).iter().map(|s| s.id.as_str()));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_kinds_parse_from_type_and_endpoint_names_and_member_types_without_case() {
        for (s, k) in [
            ("User", ResourceKind::User),
            ("Users", ResourceKind::User),
            ("Group", ResourceKind::Group),
            ("Groups", ResourceKind::Group),
        ] {
            assert_eq!(s.parse::<ResourceKind>(), Ok(k));
        }
        assert!("user".parse::<ResourceKind>().is_err());
        assert!("Devices".parse::<ResourceKind>().is_err());
        assert_eq!(ResourceKind::Group.to_string(), "Group");
        assert_eq!(
            ResourceKind::from_member_type("gROUP"),
            Some(ResourceKind::Group)
        );
        assert_eq!(
            ResourceKind::from_member_type("user"),
            Some(ResourceKind::User)
        );
        assert_eq!(ResourceKind::from_member_type("Users"), None);
    }

    fn p(s: &str) -> AttrPath {
        match AttrPath::parse(s) {
            Ok(p) => p,
            Err(e) => panic!("{s}: {e}"),
        }
    }

    #[test]
    fn finds_attributes_case_insensitively_and_qualified() {
        let reg = SchemaRegistry::new();
        let cases = [
            (ResourceKind::User, "userName", Some("userName")),
            (ResourceKind::User, "USERNAME", Some("userName")),
            (ResourceKind::User, "name.givenName", Some("givenName")),
            (
                ResourceKind::User,
                "urn:ietf:params:scim:schemas:core:2.0:User:userName",
                Some("userName"),
            ),
            (
                ResourceKind::User,
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
                Some("value"),
            ),
            (ResourceKind::User, "employeeNumber", Some("employeeNumber")),
            (
                ResourceKind::User,
                "meta.lastModified",
                Some("lastModified"),
            ),
            (ResourceKind::User, "id", Some("id")),
            (ResourceKind::User, "emails.type", Some("type")),
            (ResourceKind::User, "nope", None),
            (ResourceKind::User, "name.nope", None),
            (ResourceKind::Group, "members.value", Some("value")),
            (ResourceKind::Group, "members.$ref", Some("$ref")),
            (ResourceKind::Group, "userName", None),
        ];
        for (kind, path, want) in cases {
            assert_eq!(
                reg.find(kind, &p(path)).map(|a| a.name.as_str()),
                want,
                "{path}"
            );
        }
    }

    #[test]
    fn core_user_schema_is_complete() {
        let reg = SchemaRegistry::new();
        let user = reg.core(ResourceKind::User);
        for name in [
            "userName",
            "name",
            "displayName",
            "nickName",
            "profileUrl",
            "title",
            "userType",
            "preferredLanguage",
            "locale",
            "timezone",
            "active",
            "password",
            "emails",
            "phoneNumbers",
            "ims",
            "photos",
            "addresses",
            "groups",
            "entitlements",
            "roles",
            "x509Certificates",
        ] {
            assert!(user.attr(name).is_some(), "{name}");
        }
        let pw = user.attr("password");
        assert_eq!(
            pw.map(|a| (a.mutability, a.returned)),
            Some((Mutability::WriteOnly, Returned::Never))
        );
        assert_eq!(
            user.attr("groups").map(|a| a.mutability),
            Some(Mutability::ReadOnly)
        );
        assert_eq!(user.attr("userName").map(|a| a.case_exact), Some(false));
        assert_eq!(
            reg.find(ResourceKind::User, &p("externalId"))
                .map(|a| a.case_exact),
            Some(true)
        );
    }

    #[test]
    fn custom_attributes() {
        let mut reg = SchemaRegistry::new();
        let role = Attribute::new("roleId", AttrType::String).canonical(&["a1", "b2"]);
        assert!(reg.add_attribute(USER_SCHEMA, role.clone()).is_ok());
        assert!(matches!(
            reg.add_attribute(USER_SCHEMA, role),
            Err(SchemaError::Duplicate { .. })
        ));
        assert!(
            reg.find(
                ResourceKind::User,
                &p("urn:ietf:params:scim:schemas:core:2.0:User:roleId")
            )
            .is_some()
        );
        let r = reg.resolve(ResourceKind::User, &p("roleId"));
        assert_eq!(r.and_then(|r| r.extension), None);

        let ext = "urn:example:params:scim:schemas:extension:acme:1.0:User";
        assert!(
            reg.add_attribute(ext, Attribute::new("costCenter", AttrType::String))
                .is_ok()
        );
        let r = reg.resolve(ResourceKind::User, &p(&format!("{ext}:costCenter")));
        assert_eq!(r.and_then(|r| r.extension), Some(ext));
        assert!(reg.schema_ids(ResourceKind::User).contains(&ext));
        assert!(
            reg.add_attribute("nourn", Attribute::new("x", AttrType::String))
                .is_err()
        );
        assert!(
            reg.add_attribute(ext, Attribute::new("bad name", AttrType::String))
                .is_err()
        );
    }
}
