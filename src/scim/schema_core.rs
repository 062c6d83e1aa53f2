//! The RFC 7643 §4 and §8.7 schema definitions: core User, Enterprise User, Group.

use crate::scim::schema::{
    AttrType, Attribute, ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, Mutability, Returned, Schema,
    USER_SCHEMA, Uniqueness, ValueRule,
};

fn s(name: &str) -> Attribute {
    Attribute::new(name, AttrType::String)
}

fn primary() -> Attribute {
    Attribute::new("primary", AttrType::Boolean)
        .desc("Whether this is the preferred value; at most one value may be primary.")
}

/// value/display/type/primary, the shape shared by most multi-valued User attributes.
fn plural(name: &str, desc: &str, value_type: AttrType, types: &[&str]) -> Attribute {
    Attribute::new(name, AttrType::Complex)
        .multi()
        .desc(desc)
        .subs(vec![
            Attribute::new("value", value_type).desc("The value."),
            s("display").desc("A human-readable name, primarily used for display purposes."),
            s("type")
                .desc("A label indicating the attribute's function.")
                .canonical(types),
            primary(),
        ])
}

/// `id`, `externalId` and `meta` (RFC 7643 §3.1), which every resource carries.
pub fn common_attributes() -> Vec<Attribute> {
    let ro = Mutability::ReadOnly;
    vec![
        s("id")
            .desc("Unique identifier assigned by the service provider.")
            .case_exact()
            .mutability(ro)
            .returned(Returned::Always)
            .uniqueness(Uniqueness::Server),
        s("externalId")
            .desc("Identifier assigned by the provisioning client.")
            .case_exact(),
        Attribute::new("meta", AttrType::Complex)
            .desc("Resource metadata.")
            .mutability(ro)
            .subs(vec![
                s("resourceType").case_exact().mutability(ro),
                Attribute::new("created", AttrType::DateTime).mutability(ro),
                Attribute::new("lastModified", AttrType::DateTime).mutability(ro),
                Attribute::new("location", AttrType::Reference)
                    .case_exact()
                    .mutability(ro)
                    .refs(&["uri"]),
                s("version").case_exact().mutability(ro),
            ]),
    ]
}

/// RFC 7643 §4.1 core User schema.
pub fn user_schema() -> Schema {
    let name = Attribute::new("name", AttrType::Complex)
        .desc("The components of the user's real name.")
        .subs(vec![
            s("formatted").desc("The full name, formatted for display."),
            s("familyName").desc("The family name."),
            s("givenName").desc("The given name."),
            s("middleName").desc("The middle name(s)."),
            s("honorificPrefix").desc("The honorific prefix(es), e.g. 'Ms.'."),
            s("honorificSuffix").desc("The honorific suffix(es), e.g. 'III'."),
        ]);
    let addresses = Attribute::new("addresses", AttrType::Complex)
        .multi()
        .desc("A physical mailing address for this user.")
        .subs(vec![
            s("formatted").desc("The full mailing address, formatted for display."),
            s("streetAddress").desc("The full street address component."),
            s("locality").desc("The city or locality component."),
            s("region").desc("The state or region component."),
            s("postalCode").desc("The zip code or postal code component."),
            s("country").desc("The country name component."),
            s("type")
                .desc("A label indicating the attribute's function.")
                .canonical(&["work", "home", "other"]),
            primary(),
        ]);
    let ro = Mutability::ReadOnly;
    let groups = Attribute::new("groups", AttrType::Complex)
        .multi()
        .mutability(ro)
        .desc("Groups to which the user belongs, direct or indirect.")
        .subs(vec![
            s("value")
                .mutability(ro)
                .desc("The identifier of the group."),
            Attribute::new("$ref", AttrType::Reference)
                .mutability(ro)
                .refs(&["User", "Group"])
                .desc("The URI of the group."),
            s("display")
                .mutability(ro)
                .desc("A human-readable name of the group."),
            s("type")
                .mutability(ro)
                .canonical(&["direct", "indirect"])
                .desc("Direct or indirect membership."),
        ]);
    Schema {
        id: USER_SCHEMA.to_string(),
        name: "User".to_string(),
        description: "User Account".to_string(),
        attributes: vec![
            s("userName")
                .required()
                .uniqueness(Uniqueness::Server)
                .rule(ValueRule::UserName)
                .desc("Unique identifier for the user, typically used to authenticate."),
            name,
            s("displayName").desc("The name of the user, suitable for display to end-users."),
            s("nickName").desc("The casual way to address the user."),
            Attribute::new("profileUrl", AttrType::Reference)
                .refs(&["external"])
                .desc("A fully qualified URL pointing to a page representing the user's online profile."),
            s("title").desc("The user's title, such as 'Vice President'."),
            s("userType").desc("Identifies the relationship between the organization and the user."),
            s("preferredLanguage").desc("The user's preferred written or spoken language."),
            s("locale").desc("The user's default location for localization."),
            s("timezone").desc("The user's time zone in IANA Time Zone database format."),
            Attribute::new("active", AttrType::Boolean).desc("The user's administrative status."),
            s("password")
                .mutability(Mutability::WriteOnly)
                .returned(Returned::Never)
                .desc("The user's cleartext password; never stored or returned by this bridge."),
            plural("emails", "Email addresses for the user.", AttrType::String, &["work", "home", "other"]),
            plural(
                "phoneNumbers",
                "Phone numbers for the user.",
                AttrType::String,
                &["work", "home", "mobile", "fax", "pager", "other"],
            ),
            plural(
                "ims",
                "Instant messaging addresses for the user.",
                AttrType::String,
                &["aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"],
            ),
            plural("photos", "URLs of images of the user.", AttrType::Reference, &["photo", "thumbnail"]),
            addresses,
            groups,
            plural("entitlements", "A list of entitlements for the user.", AttrType::String, &[]),
            plural("roles", "A list of roles for the user.", AttrType::String, &[]),
            plural("x509Certificates", "A list of certificates issued to the user.", AttrType::Binary, &[]),
        ],
    }
}

/// RFC 7643 §4.3 Enterprise User extension.
pub fn enterprise_schema() -> Schema {
    Schema {
        id: ENTERPRISE_USER_SCHEMA.to_string(),
        name: "EnterpriseUser".to_string(),
        description: "Enterprise User".to_string(),
        attributes: vec![
            s("employeeNumber").desc("Numeric or alphanumeric identifier assigned to a person."),
            s("costCenter").desc("Identifies the name of a cost center."),
            s("organization").desc("Identifies the name of an organization."),
            s("division").desc("Identifies the name of a division."),
            s("department").desc("Identifies the name of a department."),
            Attribute::new("manager", AttrType::Complex)
                .desc("The user's manager.")
                .subs(vec![
                    s("value").desc("The id of the SCIM resource representing the user's manager."),
                    Attribute::new("$ref", AttrType::Reference)
                        .refs(&["User"])
                        .desc("The URI of the manager's SCIM resource."),
                    s("displayName")
                        .mutability(Mutability::ReadOnly)
                        .desc("The displayName of the user's manager."),
                ]),
        ],
    }
}

/// RFC 7643 §4.2 Group schema.
pub fn group_schema() -> Schema {
    Schema {
        id: GROUP_SCHEMA.to_string(),
        name: "Group".to_string(),
        description: "Group".to_string(),
        attributes: vec![
            s("displayName")
                .required()
                .desc("A human-readable name for the group."),
            Attribute::new("members", AttrType::Complex)
                .multi()
                .desc("A list of members of the group.")
                .subs(vec![
                    s("value")
                        .mutability(Mutability::Immutable)
                        .desc("Identifier of the member."),
                    Attribute::new("$ref", AttrType::Reference)
                        .mutability(Mutability::Immutable)
                        .refs(&["User", "Group"])
                        .desc("The URI of the member resource."),
                    s("display").desc("A human-readable name of the member."),
                    s("type")
                        .mutability(Mutability::Immutable)
                        .canonical(&["User", "Group"])
                        .desc("The type of the member."),
                ]),
        ],
    }
}
