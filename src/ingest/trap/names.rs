//! Names for the OIDs a trap carries, so an engineer reads `linkDown` and
//! `ifOperStatus.3=down(2)` rather than dotted numbers: SNMPv2-MIB's traps and objects, IF-MIB's
//! interface columns, and the few others routers commonly send. An OID outside the table is
//! shown dotted, as it came.

/// Known OIDs (dotted, without a trailing index) and their MIB names.
const NAMES: &[(&str, &str)] = &[
    ("1.3.6.1.6.3.1.1.5.1", "coldStart"),
    ("1.3.6.1.6.3.1.1.5.2", "warmStart"),
    ("1.3.6.1.6.3.1.1.5.3", "linkDown"),
    ("1.3.6.1.6.3.1.1.5.4", "linkUp"),
    ("1.3.6.1.6.3.1.1.5.5", "authenticationFailure"),
    ("1.3.6.1.6.3.1.1.4.1", "snmpTrapOID"),
    ("1.3.6.1.6.3.1.1.4.3", "snmpTrapEnterprise"),
    ("1.3.6.1.2.1.1.1", "sysDescr"),
    ("1.3.6.1.2.1.1.3", "sysUpTime"),
    ("1.3.6.1.2.1.1.5", "sysName"),
    ("1.3.6.1.2.1.1.6", "sysLocation"),
    ("1.3.6.1.2.1.2.2.1.1", "ifIndex"),
    ("1.3.6.1.2.1.2.2.1.2", "ifDescr"),
    ("1.3.6.1.2.1.2.2.1.3", "ifType"),
    ("1.3.6.1.2.1.2.2.1.7", "ifAdminStatus"),
    ("1.3.6.1.2.1.2.2.1.8", "ifOperStatus"),
    ("1.3.6.1.2.1.31.1.1.1.1", "ifName"),
    ("1.3.6.1.2.1.31.1.1.1.18", "ifAlias"),
    ("1.3.6.1.2.1.47.2.0.1", "entConfigChange"),
    ("1.3.6.1.2.1.15.7.1", "bgpEstablished"),
    ("1.3.6.1.2.1.15.7.2", "bgpBackwardTransition"),
    ("1.3.6.1.2.1.14.16.2.2", "ospfNbrStateChange"),
];

/// ifAdminStatus / ifOperStatus values (IF-MIB).
const IF_STATUS: &[&str] = &[
    "up",
    "down",
    "testing",
    "unknown",
    "dormant",
    "notPresent",
    "lowerLayerDown",
];

/// Names a device's profile gives OIDs (its metrics' `oid` → `name`), looked at before the
/// built-in table.
pub type Extra = [(String, String)];

/// The name of `oid` with what follows the longest known prefix as its index
/// (`ifOperStatus.3`, `prb_utilisation_dl.2`), or the dotted OID if no prefix is known.
pub fn name(oid: &str, extra: &Extra) -> String {
    let prefixes = extra
        .iter()
        .map(|(p, n)| (p.as_str(), n.as_str()))
        .chain(NAMES.iter().copied());
    let on_boundary = |prefix: &str| {
        oid == prefix
            || oid
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with('.'))
    };
    match prefixes
        .filter(|(p, _)| on_boundary(p))
        .max_by_key(|(p, _)| p.len())
    {
        Some((prefix, name)) => format!("{name}{}", &oid[prefix.len()..]),
        None => oid.to_owned(),
    }
}

/// A trap OID as `name (dotted)` when it has a name, else dotted.
pub fn trap(oid: &str) -> String {
    match name(oid, &[]) {
        n if n == oid => n,
        n => format!("{n} ({oid})"),
    }
}

/// A varbind's value, with the meaning of an interface status number (`down(2)`).
pub fn value(named_oid: &str, value: String) -> String {
    let status = named_oid.starts_with("ifAdminStatus") || named_oid.starts_with("ifOperStatus");
    match value.parse::<usize>() {
        Ok(n) if status && (1..=IF_STATUS.len()).contains(&n) => {
            format!("{}({n})", IF_STATUS[n - 1])
        }
        _ => value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_oids_are_named_with_their_index_and_others_kept() {
        assert_eq!(name("1.3.6.1.2.1.2.2.1.8.3", &[]), "ifOperStatus.3");
        assert_eq!(name("1.3.6.1.2.1.31.1.1.1.18.12", &[]), "ifAlias.12");
        assert_eq!(
            name("1.3.6.1.2.1.2.2.1.10.3", &[]),
            "1.3.6.1.2.1.2.2.1.10.3"
        );
        // A prefix only counts on an arc boundary.
        assert_eq!(name("1.3.6.1.2.1.2.2.1.18", &[]), "1.3.6.1.2.1.2.2.1.18");
        // A profile's metric names its vendor OIDs.
        let profile = [(
            "1.3.6.1.4.1.32473.10.1.1.2".to_owned(),
            "prb_utilisation_dl".to_owned(),
        )];
        assert_eq!(
            name("1.3.6.1.4.1.32473.10.1.1.2.3", &profile),
            "prb_utilisation_dl.3"
        );
        assert_eq!(
            trap("1.3.6.1.6.3.1.1.5.3"),
            "linkDown (1.3.6.1.6.3.1.1.5.3)"
        );
        assert_eq!(trap("1.3.6.1.4.1.9999.1.2"), "1.3.6.1.4.1.9999.1.2");
        assert_eq!(value("ifOperStatus.3", "2".into()), "down(2)");
        assert_eq!(value("ifAdminStatus.3", "9".into()), "9");
        assert_eq!(value("ifIndex.3", "2".into()), "2");
    }
}
