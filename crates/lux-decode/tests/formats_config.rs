//! Validation of the `[transform.decode]` dictionary, layout and source configuration: every
//! problem reported with its full dotted key, and the demo defaults valid.

use lux_decode::{DecodeConfig, Decoder};

fn problems(toml_text: &str) -> Vec<(String, String)> {
    let cfg: DecodeConfig = toml::from_str(toml_text).unwrap_or_else(|e| panic!("{e}"));
    cfg.validate("transform.decode").into_iter().map(|p| (p.key, p.message)).collect()
}

fn keys(toml_text: &str) -> Vec<String> {
    problems(toml_text).into_iter().map(|(k, _)| k).collect()
}

#[test]
fn defaults_are_valid_and_round_trip() {
    let cfg = DecodeConfig::default();
    assert!(cfg.validate("transform.decode").is_empty());
    let text = toml::to_string(&cfg).unwrap_or_default();
    assert_eq!(toml::from_str::<DecodeConfig>(&text).ok(), Some(cfg));
    assert!(toml::from_str::<DecodeConfig>("unknown = 1").is_err(), "unknown keys are refused");
}

#[test]
fn vendor_dictionary_problems() {
    let k = keys(
        r#"
        [[radius.vendors]]
        id = 2636
        name = "Juniper"
        attributes = [
          { code = 1, name = "A", type = "text" },
          { code = 1, name = "B", type = "integer" },
          { code = 300, name = "C", type = "ipaddr" },
          { code = 4, name = "A", type = "float" },
          { code = 5, name = "", type = "date" },
        ]
        [[radius.vendors]]
        id = 2636
        name = ""
        "#,
    );
    assert_eq!(
        k,
        [
            "transform.decode.radius.vendors[0].attributes[1].code",
            "transform.decode.radius.vendors[0].attributes[2].code",
            "transform.decode.radius.vendors[0].attributes[3].name",
            "transform.decode.radius.vendors[0].attributes[3].type",
            "transform.decode.radius.vendors[0].attributes[4].name",
            "transform.decode.radius.vendors[1].id",
            "transform.decode.radius.vendors[1].name",
        ]
    );
    let p = problems(
        "[[radius.vendors]]\nid = 9\nname = \"Cisco\"\nattributes = [{ code = 1, name = \"X\", type = \"float\" }]",
    );
    assert!(p[0].1.contains("\"float\" is not a RADIUS attribute type"), "{p:?}");
}

#[test]
fn layout_problems() {
    let k = keys(
        r#"
        [[layouts]]
        name = "l"
        magic = "ABC"
        length_field = "name"
        record_size = 8
        fields = [
          { name = "a", offset = 0, type = "u128" },
          { name = "a", offset = 0, type = "u8" },
          { name = "s", offset = 0, type = "string" },
          { name = "p", offset = 0, type = "string_prefixed", length_size = 3 },
          { name = "far", offset = 6, type = "u32" },
          { name = "huge", offset = 99999999, type = "u8" },
          { name = "name", offset = 0, type = "bytes", length = 2 },
        ]
        [layouts.tlv]
        tag_size = 3
        length_size = 0
        tags = [
          { tag = 1, name = "t", type = "string_nul" },
          { tag = 1, name = "a", type = "u8" },
        ]
        [[layouts]]
        name = "l"
        "#,
    );
    assert_eq!(
        k,
        [
            "transform.decode.layouts[0].magic",
            "transform.decode.layouts[0].fields[0].type",
            "transform.decode.layouts[0].fields[1].name",
            "transform.decode.layouts[0].fields[2].length",
            "transform.decode.layouts[0].fields[3].length_size",
            "transform.decode.layouts[0].fields[4].offset",
            "transform.decode.layouts[0].fields[5].offset",
            "transform.decode.layouts[0].length_field",
            "transform.decode.layouts[0].record_size",
            "transform.decode.layouts[0].tlv.tag_size",
            "transform.decode.layouts[0].tlv.length_size",
            "transform.decode.layouts[0].tlv.tags[0].type",
            "transform.decode.layouts[0].tlv.tags[1].tag",
            "transform.decode.layouts[0].tlv.tags[1].name",
            "transform.decode.layouts[1].name",
        ]
    );
}

#[test]
fn source_problems() {
    let k = keys(
        r#"
        [[layouts]]
        name = "ok"
        fields = [{ name = "x", offset = 0, type = "u8" }]
        [[sources]]
        source = "a"
        format = "binary"
        [[sources]]
        source = "a"
        format = "json"
        layout = "nope"
        kind = { field = "k", value = "reboot" }
        outcome = { map = { "1" = "failure" } }
        time = { field = "" }
        [[sources]]
        source = ""
        format = "kv"
        equipment = { field = "h" }
        kind = { value = "reboot", map = { "1" = "link_up" } }
        "#,
    );
    assert_eq!(
        k,
        [
            "transform.decode.sources[0].layout",
            "transform.decode.sources[0].equipment",
            "transform.decode.sources[1].source",
            "transform.decode.sources[1].layout",
            "transform.decode.sources[1].layout",
            "transform.decode.sources[1].equipment",
            "transform.decode.sources[1].time.field",
            "transform.decode.sources[1].kind.value",
            "transform.decode.sources[1].outcome.field",
            "transform.decode.sources[2].source",
            "transform.decode.sources[2].kind.map",
        ]
    );
    // An unknown kind name is refused when the file is read.
    assert!(toml::from_str::<DecodeConfig>("[[sources]]\nsource = \"a\"\nkind = { value = \"explosion\" }").is_err());
    // The decoder refuses an invalid configuration with every problem.
    let cfg: DecodeConfig = toml::from_str("[[sources]]\nsource = \"a\"\nformat = \"json\"").unwrap_or_default();
    assert_eq!(Decoder::try_new(&cfg, b"k").err().map(|p| p.len()), Some(1));
}
