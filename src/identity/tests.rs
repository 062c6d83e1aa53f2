//! One group of table-driven cases per seed product, with the rules its guide
//! describes written as a user would write them in the config, applied to realistic
//! Entra ID payloads.

use std::path::Path;

use serde_json::{Value, json};

use super::*;
use crate::config::{Environment, TargetConfig, load_str};
use crate::scim::ResourceKind;
use crate::targets::Mapping;

const CORE: &str = "urn:ietf:params:scim:schemas:core:2.0:User";

/// The Entra provider, declaring DiliTrust's role attribute as an extension schema.
const PROVIDERS: &str = r#"
[[providers]]
name = "entra"
dialect = "entra"
[[providers.schemas]]
id = "urn:ietf:params:scim:schemas:extension:dilitrust:2.0:User"
name = "DiliTrust User"
[[providers.schemas.attributes]]
name = "roleId"
"#;

/// A SCIM target configured with `extra` (TOML inside its `[[targets]]` table).
/// A SCIM target's contact-type renames.
fn contact_types(t: &TargetConfig) -> &crate::identity::ContactTypes {
    match &t.spec {
        crate::config::TargetSpec::Scim { contact_types, .. } => contact_types,
        other => panic!("not a SCIM target: {other:?}"),
    }
}

fn target(extra: &str) -> TargetConfig {
    let text = format!(
        "{PROVIDERS}\n[[targets]]\nname = \"app\"\nkind = \"scim\"\nurl = \"https://app.example.com/scim/v2\"\n{extra}\n"
    );
    match load_str(&text, "seed.toml", Path::new("/tmp"), &Environment::new()) {
        Ok(mut loaded) => loaded.config.targets.remove(0),
        Err(e) => panic!("config refused:\n{e}"),
    }
}

fn config_error(extra: &str) -> String {
    let text = format!(
        "[[targets]]\nname = \"app\"\nkind = \"scim\"\nurl = \"https://app.example.com/scim/v2\"\n{extra}\n"
    );
    match load_str(&text, "seed.toml", Path::new("/tmp"), &Environment::new()) {
        Ok(_) => panic!("config accepted:\n{extra}"),
        Err(e) => e.to_string(),
    }
}

/// An Entra user as its provisioning service sends it (after our dialect handling).
fn entra_user(user_name: &str, extra: Value) -> Value {
    let mut doc = json!({
        "schemas": [CORE, ENTERPRISE],
        "userName": user_name,
        "externalId": "0c1d6f5e-3d4b-4a8e-9a57-2f1f3c2b8e10",
        "active": true,
        "displayName": "Ada Lovelace",
        "name": {"givenName": "Ada", "familyName": "Lovelace", "formatted": "Ada Lovelace"},
        "emails": [{"type": "work", "value": user_name, "primary": true}],
        "title": "Senior Associate",
        ENTERPRISE: {"department": "Litigation", "employeeNumber": "E1043"}
    });
    if let (Some(d), Value::Object(x)) = (doc.as_object_mut(), extra) {
        for (k, v) in x {
            d.insert(k, v);
        }
    }
    doc
}

fn groups(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

/// What one case expects: the role set (by name and target value), the value kept,
/// or nothing.
#[derive(Debug)]
enum Want {
    Set(&'static str, &'static str),
    Keep(&'static str),
    Leave,
    Clear,
}

fn check(
    rules: &RoleRules,
    case: &str,
    user: &Value,
    in_groups: &[&str],
    current: Option<&str>,
    want: Want,
) {
    let d = rules.resolve(user, &groups(in_groups), current);
    let ok = match (&want, &d.outcome) {
        (Want::Set(r, v), Outcome::Set { role, value }) => role == r && value == v,
        (Want::Keep(v), Outcome::Keep { value }) => value == v,
        (Want::Leave, Outcome::Leave) => true,
        (Want::Clear, Outcome::Clear) => true,
        _ => false,
    };
    assert!(
        ok,
        "{case}: wanted {want:?}, got {:?} ({})",
        d.outcome, d.why
    );
}

const CLARAS: &str = r#"
[targets.roles]
order = ["Owner", "Manager", "Adviser", "Assistant"]
default = "Adviser"
protected = ["Owner"]
[targets.roles.groups]
Owner = []
Manager = ["Claras-Managers"]
Adviser = "Claras-Advisers"
Assistant = ["Claras-Assistants"]
"#;

#[test]
fn claras_roles_from_groups_in_privilege_order() {
    let t = target(CLARAS);
    let rules = &t.roles()[0];
    assert_eq!(rules.field, "roles");
    let u = entra_user("ada@firm.example", json!({}));
    // "By default, all new profiles receive the Adviser role."
    check(
        rules,
        "new, no group",
        &u,
        &[],
        None,
        Want::Set("Adviser", "Adviser"),
    );
    // "Roles apply in privilege order: Owner > Manager > Adviser > Assistant".
    check(
        rules,
        "manager and assistant",
        &u,
        &["Claras-Assistants", "Claras-Managers"],
        None,
        Want::Set("Manager", "Manager"),
    );
    check(
        rules,
        "group names ignore case",
        &u,
        &["claras-assistants"],
        None,
        Want::Set("Assistant", "Assistant"),
    );
    // "Profiles without matching groups retain their current role".
    check(
        rules,
        "existing, no group",
        &u,
        &["All-Staff"],
        Some("Assistant"),
        Want::Keep("Assistant"),
    );
    // "Owner roles cannot be downgraded automatically".
    check(
        rules,
        "owner moved to managers",
        &u,
        &["Claras-Managers"],
        Some("Owner"),
        Want::Keep("Owner"),
    );
    check(
        rules,
        "owner with no group",
        &u,
        &[],
        Some("owner"),
        Want::Keep("owner"),
    );
    // Others follow their groups, down as well as up.
    check(
        rules,
        "manager moved to assistants",
        &u,
        &["Claras-Assistants"],
        Some("Manager"),
        Want::Set("Assistant", "Assistant"),
    );
    check(
        rules,
        "assistant promoted",
        &u,
        &["Claras-Managers"],
        Some("Assistant"),
        Want::Set("Manager", "Manager"),
    );
    // Whether the app must be asked first: a match below a protected role may be a
    // downgrade of an Owner; no match keeps what the app holds.
    assert!(rules.needs_current(&u, &groups(&["Claras-Managers"])));
    assert!(rules.needs_current(&u, &[]));
    // Protection explains itself.
    let d = rules.resolve(&u, &groups(&["Claras-Managers"]), Some("Owner"));
    assert!(d.why.contains("protected"), "{}", d.why);
    assert!(d.why.contains("Claras-Managers"), "{}", d.why);
    assert!(rules.uses_groups());
}

#[test]
fn claras_role_is_written_as_the_primary_scim_role() {
    assert_eq!(
        role_json("roles", "Manager"),
        json!([{"value": "Manager", "primary": true}])
    );
    let at_app = json!({"roles": [{"value": "Assistant"}, {"value": "Owner", "primary": true}]});
    assert_eq!(role_at(&at_app, "roles").as_deref(), Some("Owner"));
    assert_eq!(role_at(&json!({"roles": []}), "roles"), None);
}

/// DiliTrust's role UUIDs come from `GET /Schemas`; these stand in for them.
const DILITRUST: &str = r#"
[targets.roles]
field = "urn:ietf:params:scim:schemas:core:2.0:User:roleId"
attribute = "[user.urn:ietf:params:scim:schemas:extension:dilitrust:2.0:User:roleId]"
precedence = ["attribute"]
order = ["Administrator", "Editor", "Contributor", "Validator", "Reader"]
[targets.roles.values]
Administrator = "6f0b2c1e-0000-4000-8000-000000000001"
Editor = "6f0b2c1e-0000-4000-8000-000000000002"
Contributor = "6f0b2c1e-0000-4000-8000-000000000003"
Validator = "6f0b2c1e-0000-4000-8000-000000000004"
Reader = "6f0b2c1e-0000-4000-8000-000000000005"
"#;

#[test]
fn dilitrust_exactly_one_role_from_the_role_id_attribute() {
    let t = target(DILITRUST);
    let rules = &t.roles()[0];
    // The target attribute DiliTrust's guide names: roleId in its core schema.
    assert_eq!(
        rules.field,
        "urn:ietf:params:scim:schemas:core:2.0:User:roleId"
    );
    let with = |v: &str| {
        entra_user(
            "ada@firm.example",
            json!({ "urn:ietf:params:scim:schemas:extension:dilitrust:2.0:User": {"roleId": v} }),
        )
    };
    check(
        rules,
        "editor uuid",
        &with("6f0b2c1e-0000-4000-8000-000000000002"),
        &[],
        None,
        Want::Set("Editor", "6f0b2c1e-0000-4000-8000-000000000002"),
    );
    check(
        rules,
        "uuid case",
        &with("6F0B2C1E-0000-4000-8000-000000000004"),
        &[],
        None,
        Want::Set("Validator", "6f0b2c1e-0000-4000-8000-000000000004"),
    );
    // An expression mapping in Entra may send the role's name instead.
    check(
        rules,
        "by name",
        &with("reader"),
        &[],
        None,
        Want::Set("Reader", "6f0b2c1e-0000-4000-8000-000000000005"),
    );
    // A UUID from another tenant names no role: never sent, and said so.
    let stranger = with("11111111-2222-4333-8444-555555555555");
    check(
        rules,
        "unknown uuid, new",
        &stranger,
        &[],
        None,
        Want::Leave,
    );
    check(
        rules,
        "unknown uuid, existing",
        &stranger,
        &[],
        Some("6f0b2c1e-0000-4000-8000-000000000005"),
        Want::Keep("6f0b2c1e-0000-4000-8000-000000000005"),
    );
    let d = rules.resolve(&stranger, &[], None);
    assert!(d.why.contains("ignored"), "{}", d.why);
    // Groups are not a source here, whatever the user is in.
    check(
        rules,
        "no attribute",
        &entra_user("b@firm.example", json!({})),
        &["DiliTrust-CLM-Editors"],
        None,
        Want::Leave,
    );
    assert!(!rules.uses_groups());
}

const CLUMIO: &str = r#"
[targets.roles]
order = ["Super Admin", "Organizational Unit Admin", "Backup Admin", "Restore Operator", "Help Desk Admin"]
[[targets.roles.rules]]
role = "Super Admin"
member_of = ["Clumio-Admins"]
[[targets.roles.rules]]
role = "Backup Admin"
when = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "IT" and title sw "Backup"'
[[targets.roles.rules]]
role = "Restore Operator"
when = 'title co "Operator"'
member_of = ["Clumio-Operators", "DR-Team"]
[[targets.roles.rules]]
role = "Help Desk Admin"
when = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "Service Desk"'
"#;

#[test]
fn clumio_rules_map_groups_and_conditions_to_roles() {
    let t = target(CLUMIO);
    let rules = &t.roles()[0];
    assert!(!rules.expand_nested);
    let it = |title: &str, dept: &str| {
        entra_user(
            "ops@firm.example",
            json!({ "title": title, ENTERPRISE: {"department": dept} }),
        )
    };
    check(
        rules,
        "admins group",
        &it("Partner", "Legal"),
        &["Clumio-Admins"],
        None,
        Want::Set("Super Admin", "Super Admin"),
    );
    check(
        rules,
        "attribute condition",
        &it("Backup Engineer", "IT"),
        &[],
        None,
        Want::Set("Backup Admin", "Backup Admin"),
    );
    check(
        rules,
        "condition needs both parts",
        &it("Backup Engineer", "Finance"),
        &[],
        None,
        Want::Leave,
    );
    check(
        rules,
        "condition and group",
        &it("DR Operator", "IT"),
        &["DR-Team"],
        None,
        Want::Set("Restore Operator", "Restore Operator"),
    );
    check(
        rules,
        "condition without its group",
        &it("DR Operator", "IT"),
        &[],
        None,
        Want::Leave,
    );
    // Several rules match: the most privileged role wins, whatever the rule order.
    check(
        rules,
        "two rules",
        &it("Backup Operator", "IT"),
        &["DR-Team", "Clumio-Admins"],
        None,
        Want::Set("Super Admin", "Super Admin"),
    );
    // "The assignment does not cascade to nested groups": delivery passes direct
    // groups only (unless the target sets expand_nested), so a member of a group inside Clumio-Admins
    // is not a Super Admin.
    check(
        rules,
        "nested member",
        &it("Analyst", "Legal"),
        &["Clumio-Admins-EMEA"],
        None,
        Want::Leave,
    );
    let d = rules.resolve(&it("Backup Engineer", "IT"), &[], None);
    assert!(
        d.why.contains("rules[1]") && d.why.contains("title sw"),
        "{}",
        d.why
    );
}

/// "Once Auto User Provisioning is enabled, all users are evaluated per the rules you
/// created": with `unmatched = "reset"` a user who leaves the group behind a rule
/// loses the role it gave, instead of keeping the app's role.
#[test]
fn clumio_roles_come_only_from_the_rules_when_unmatched_resets() {
    let t = target(&CLUMIO.replace(
        "[targets.roles]\n",
        "[targets.roles]\nunmatched = \"reset\"\n",
    ));
    let rules = &t.roles()[0];
    assert_eq!(rules.unmatched, Unmatched::Reset);
    let u = entra_user("ops@firm.example", json!({}));
    check(
        rules,
        "still in the group",
        &u,
        &["Clumio-Admins"],
        Some("Super Admin"),
        Want::Set("Super Admin", "Super Admin"),
    );
    check(
        rules,
        "left the group",
        &u,
        &[],
        Some("Super Admin"),
        Want::Clear,
    );
    let d = rules.resolve(&u, &[], Some("Super Admin"));
    assert!(
        d.why.contains("unmatched = \"reset\"") && d.why.contains("\"Super Admin\" is removed"),
        "{}",
        d.why
    );
    // Nothing to read at the app: whatever it holds, the answer is the same.
    assert!(!rules.needs_current(&u, &[]));
    // The same rules without `unmatched`: the app's role stays, as before.
    let keep = target(CLUMIO);
    assert_eq!(keep.roles()[0].unmatched, Unmatched::Keep);
    check(
        &keep.roles()[0],
        "left the group, keep",
        &u,
        &[],
        Some("Super Admin"),
        Want::Keep("Super Admin"),
    );

    // With a default, a user no rule matches gets it, even over the app's role; a
    // protected role is still never lowered, neither to the default nor to none.
    let t = target(
        r#"
[targets.roles]
order = ["Super Admin", "Backup Admin", "Viewer"]
default = "Viewer"
protected = ["Super Admin"]
unmatched = "reset"
[[targets.roles.rules]]
role = "Backup Admin"
member_of = ["Clumio-Backup"]
"#,
    );
    let rules = &t.roles()[0];
    check(
        rules,
        "default over the app's role",
        &u,
        &[],
        Some("Backup Admin"),
        Want::Set("Viewer", "Viewer"),
    );
    check(
        rules,
        "protected stays",
        &u,
        &[],
        Some("Super Admin"),
        Want::Keep("Super Admin"),
    );
    assert!(rules.needs_current(&u, &[]), "a protected role may be held");
    let t = target(
        "[targets.roles]\norder = [\"Owner\", \"Member\"]\nprotected = [\"Owner\"]\nunmatched = \"reset\"\n",
    );
    check(
        &t.roles()[0],
        "protected, no default",
        &u,
        &[],
        Some("Owner"),
        Want::Keep("Owner"),
    );
    check(&t.roles()[0], "no role to give", &u, &[], None, Want::Clear);
    assert_eq!(role_cleared("roles"), json!([]));
    assert_eq!(role_cleared("userType"), Value::Null);
    let e = config_error("[targets.roles]\norder = [\"A\"]\nunmatched = \"drop\"\n");
    assert!(e.contains("\"keep\" or \"reset\""), "{e}");
}

#[test]
fn clio_operate_user_type_contacts_titles_and_team_role() {
    let t = target(
        r#"
contact_types = { emails = { work = "email" } }
[targets.roles]
field = "userType"
attribute = "[user.userType]"
precedence = ["attribute"]
order = ["administrator", "fee-earner", "standard"]
default = "standard"
[targets.user_mapping]
"name.honorificPrefix" = '[user.name.honorificPrefix | oneof("Mr", "Mrs", "Ms", "Miss", "Dr", "Prof")]'
"urn:sharedo:scim:2.0:User:primaryTeamRole" = "[user.roles.value]"
"urn:sharedo:scim:2.0:User:reference" = "[user.urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber]"
[targets.group_mapping]
"urn:sharedo:scim:2.0:Team:organisation" = "Firm LLP"
"urn:sharedo:scim:2.0:Team:type" = "ACL"
"#,
    );
    let rules = &t.roles()[0];
    // "Users added from your identity provider are given a … user type … overridden
    // by providing a mapping for a 'userType'".
    let plain = entra_user("ada@firm.example", json!({}));
    check(
        rules,
        "default user type",
        &plain,
        &[],
        None,
        Want::Set("standard", "standard"),
    );
    let typed = entra_user("ada@firm.example", json!({"userType": "Fee-Earner"}));
    check(
        rules,
        "mapped user type",
        &typed,
        &[],
        None,
        Want::Set("fee-earner", "fee-earner"),
    );

    let mapping = Mapping {
        user: t.user_mapping.clone(),
        group: t.group_mapping.clone(),
    };
    let user = entra_user(
        "ada@firm.example",
        json!({
            "name": {"givenName": "Ada", "familyName": "Lovelace", "honorificPrefix": "dr"},
            "roles": [{"value": "Supervisor"}, {"value": "Reviewer"}],
            "emails": [{"type": "work", "value": "ada@firm.example", "primary": true}],
            "phoneNumbers": [{"type": "mobile", "value": "+44 7700 900123"}, {"type": "work", "value": "+44 20 7946 0000"}],
        }),
    );
    let mut out = mapping.scim_document(ResourceKind::User, &user).unwrap();
    retype_contacts(&mut out, contact_types(&t));
    // "If the values cannot be mapped to the optionset then they are ignored".
    assert_eq!(out["name"]["honorificPrefix"], "Dr");
    let mut odd = user.clone();
    odd["name"]["honorificPrefix"] = json!("Sir");
    let odd_out = mapping.scim_document(ResourceKind::User, &odd).unwrap();
    // Not in the option set: left out, not sent as the IdP spelled it.
    assert!(
        odd_out["name"].get("honorificPrefix").is_none(),
        "{odd_out}"
    );
    assert_eq!(odd_out["name"]["givenName"], "Ada");
    // "The first role passed will be set as the role on the primary team".
    assert_eq!(
        out["urn:sharedo:scim:2.0:User"]["primaryTeamRole"],
        "Supervisor"
    );
    assert_eq!(out["urn:sharedo:scim:2.0:User"]["reference"], "E1043");
    // Entra's emails[type eq "work"] becomes the app's "email" contact type.
    // "phoneNumbers: Type should map to the contact types defined": a work phone is
    // a work phone, not an "email" contact.
    assert_eq!(out["emails"][0]["type"], "email");
    assert_eq!(out["phoneNumbers"][0]["type"], "mobile");
    assert_eq!(out["phoneNumbers"][1]["type"], "work");
    // Groups become teams of the configured organisation and team type.
    let team = mapping
        .scim_document(ResourceKind::Group, &json!({"displayName": "Litigation"}))
        .unwrap();
    assert_eq!(
        team["urn:sharedo:scim:2.0:Team"]["organisation"],
        "Firm LLP"
    );
    assert_eq!(team["urn:sharedo:scim:2.0:Team"]["type"], "ACL");
}

#[test]
fn clio_operate_manager_becomes_a_connection_once_the_manager_is_there() {
    let mut user = entra_user(
        "ada@firm.example",
        json!({ ENTERPRISE: {"manager": {"value": "bridge-id-of-grace", "displayName": "Grace Hopper"}} }),
    );
    assert_eq!(manager_id(&user), Some("bridge-id-of-grace"));
    let mut waiting = user.clone();
    link_manager(
        &mut waiting,
        Some(&ManagerLink {
            id: "bridge-id-of-grace".into(),
            target_id: None,
        }),
    );
    assert!(
        waiting[ENTERPRISE].get("manager").is_none(),
        "no dangling reference"
    );
    link_manager(
        &mut user,
        Some(&ManagerLink {
            id: "bridge-id-of-grace".into(),
            target_id: Some("app-77".into()),
        }),
    );
    assert_eq!(
        user[ENTERPRISE]["manager"],
        json!({"value": "app-77", "displayName": "Grace Hopper"})
    );
    assert_eq!(
        manager_id(&json!({ENTERPRISE: {"manager": {"value": "  "}}})),
        None
    );
}

#[test]
fn rules_apply_per_provider() {
    let t = target(
        r#"
[[targets.roles]]
providers = ["entra"]
order = ["Owner", "Member"]
default = "Member"
[[targets.roles]]
providers = ["okta"]
order = ["Owner", "Guest"]
default = "Guest"
"#,
    );
    let pick = |p: &str| {
        t.roles()
            .iter()
            .find(|r| r.applies_to(p))
            .map(|r| r.default.clone())
    };
    assert_eq!(pick("entra"), Some(Some("Member".into())));
    assert_eq!(pick("okta"), Some(Some("Guest".into())));
    assert_eq!(pick("other"), None);
}

#[test]
fn bad_rules_are_refused_with_their_position() {
    let e = config_error(
        "[targets.roles]\norder = [\"Owner\", \"Manager\"]\nprotected = [\"Admin\"]\n",
    );
    assert!(
        e.contains("\"Admin\" is not in targets[0].roles.order"),
        "{e}"
    );
    assert!(e.contains("seed.toml:7:"), "{e}");
    let e = config_error("[targets.roles]\norder = [\"A\"]\ndefault = \"B\"\n");
    assert!(e.contains("\"B\" is not in"), "{e}");
    let e = config_error("[targets.roles]\norder = [\"A\"]\n[targets.roles.groups]\nZ = [\"g\"]\n");
    assert!(e.contains("\"Z\" is not in"), "{e}");
    let e = config_error("[targets.roles]\norder = [\"A\"]\nattribute = \"[user.roleId\"\n");
    assert!(e.contains("unclosed"), "{e}");
    let e = config_error(
        "[targets.roles]\norder = [\"A\"]\n[[targets.roles.rules]]\nrole = \"A\"\nwhen = 'title eq'\n",
    );
    assert!(e.contains("not a SCIM filter"), "{e}");
    let e =
        config_error("[targets.roles]\norder = [\"A\"]\n[[targets.roles.rules]]\nrole = \"A\"\n");
    assert!(e.contains("needs `when`"), "{e}");
    let e = config_error("[targets.roles]\norder = [\"A\"]\nprecedence = [\"manager\"]\n");
    assert!(e.contains("unknown role source"), "{e}");
    let e = config_error("[targets.roles]\norder = [\"A\", \"a\"]\n");
    assert!(e.contains("listed twice"), "{e}");
    let e = config_error("delete_after = \"30d\"\non_delete = \"delete\"\n");
    assert!(e.contains("on_delete = \"deactivate\""), "{e}");
    let e = config_error("[targets.user_mapping]\ntitle = '[user.title | oneof()]'\n");
    assert!(e.contains("oneof takes"), "{e}");
    // Attributes the bridge never keeps: a typo, an undeclared extension, an
    // undeclared attribute of a declared one.
    let e = config_error("[targets.user_mapping]\ndisplayName = '[user.nmae.givenName] x'\n");
    assert!(e.contains("has no attribute \"nmae\""), "{e}");
    assert!(e.contains("seed.toml:6:"), "{e}");
    let e = config_error(
        "[targets.roles]\norder = [\"A\"]\nattribute = \"[user.urn:example:app:2.0:User:roleId]\"\n",
    );
    assert!(
        e.contains("no schema \"urn:example:app:2.0:User\" is declared"),
        "{e}"
    );
    let e = config_error(
        "[targets.group_mapping]\ndisplayName = '[group.urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department]'\n",
    );
    assert!(e.contains("no schema"), "{e}");
}

/// The flat form renames a type in every contact attribute (existing configs keep
/// working), warns with the per-attribute spelling, and yields to a per-attribute
/// rename of the same type.
#[test]
fn contact_types_flat_form_applies_everywhere_and_warns() {
    let text = format!(
        "{PROVIDERS}\n[[targets]]\nname = \"app\"\nkind = \"scim\"\nurl = \"https://app.example.com/scim/v2\"\n[targets.contact_types]\nwork = \"business\"\nemails = {{ work = \"email\" }}\n"
    );
    let loaded = match load_str(&text, "seed.toml", Path::new("/tmp"), &Environment::new()) {
        Ok(l) => l,
        Err(e) => panic!("config refused:\n{e}"),
    };
    let warning = loaded.warnings.join("\n");
    assert!(
        warning.contains("targets[0].contact_types")
            && warning.contains("every one of emails, phoneNumbers, addresses, ims")
            && warning.contains("emails = { work = \"business\" }"),
        "{warning}"
    );
    let types = contact_types(&loaded.config.targets[0]);
    let mut user = json!({
        "emails": [{"type": "work", "value": "a@firm.example"}],
        "phoneNumbers": [{"type": "Work", "value": "+44 20 7946 0000"}, {"type": "home", "value": "1"}],
        "addresses": [{"type": "work", "locality": "London"}],
    });
    retype_contacts(&mut user, types);
    assert_eq!(user["emails"][0]["type"], "email");
    assert_eq!(user["phoneNumbers"][0]["type"], "business");
    assert_eq!(user["phoneNumbers"][1]["type"], "home");
    assert_eq!(user["addresses"][0]["type"], "business");

    let e = config_error("[targets.contact_types]\nemail = { work = \"email\" }\n");
    assert!(
        e.contains("\"email\" is not a multi-valued attribute with contact types"),
        "{e}"
    );
    let per = target("contact_types = { phonenumbers = { work = \"office\" } }");
    assert_eq!(
        contact_types(&per).0[0].attribute.as_deref(),
        Some("phoneNumbers")
    );
}
