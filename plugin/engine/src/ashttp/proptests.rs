//! Property tests: no input makes the request layer panic, and every request the encoder can
//! write is read back unchanged in both query forms.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::sample::select;

use super::*;
use crate::http::Request;

/// Values that stress the percent-decoder and the pair splitter.
fn query_value() -> impl Strategy<Value = String> {
    vec(
        prop_oneof![
            "[A-Za-z0-9._-]{0,8}",
            Just("%".to_owned()),
            "%[0-9A-Fa-f]{0,2}",
            "%[G-Zg-z]{1,2}",
            Just("+".to_owned()),
            Just("=".to_owned()),
            Just("&".to_owned()),
            "\\PC{0,3}",
        ],
        0..6,
    )
    .prop_map(|parts| parts.concat())
}

fn query_key() -> impl Strategy<Value = String> {
    prop_oneof![
        select(vec![
            "Cmd",
            "cmd",
            "User",
            "DeviceId",
            "DEVICEID",
            "DeviceType",
            "AttachmentName",
            "CollectionId",
            "ItemId",
            "LongId",
            "Occurrence",
            "SaveInSent",
        ])
        .prop_map(str::to_owned),
        query_value(),
    ]
}

fn plain_like_query() -> impl Strategy<Value = String> {
    vec((query_key(), query_value()), 0..12).prop_map(|pairs| {
        pairs.into_iter().map(|(key, value)| format!("{key}={value}")).collect::<Vec<_>>().join("&")
    })
}

/// A blob that starts like a real one, so the fuzzing reaches the later fields.
fn blob_like() -> impl Strategy<Value = Vec<u8>> {
    (
        select(vec![121u8, 140, 141, 160, 161, 25, 120, 0, 255]),
        any::<u8>(),
        vec(any::<u8>(), 0..300),
    )
        .prop_map(|(version, command, tail)| {
            let mut blob = vec![version, command % 25];
            blob.extend(tail);
            blob
        })
}

fn header_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        vec(any::<u8>(), 0..20),
        select(vec!["12.1", "14.0", "16.1", "2.5", "0", "T", "4294967296", " 16.1 "])
            .prop_map(|text| text.as_bytes().to_vec()),
    ]
}

fn eas_headers() -> impl Strategy<Value = Vec<(String, Vec<u8>)>> {
    vec(
        (
            select(vec![
                "ms-asprotocolversion",
                "x-ms-policykey",
                "ms-asacceptmultipart",
                "content-type",
                "user-agent",
                "accept-language",
            ]),
            header_value(),
        ),
        0..6,
    )
    .prop_map(|headers| headers.into_iter().map(|(name, value)| (name.to_owned(), value)).collect())
}

fn command_and_version() -> impl Strategy<Value = (Command, ProtocolVersion)> {
    (select(Command::ALL.to_vec()), select(ProtocolVersion::ALL.to_vec()))
        .prop_filter("the command exists in the version", |(command, version)| {
            command.is_available_in(*version)
        })
}

/// Text a client may put in a free-text header: no surrounding whitespace (it is trimmed).
fn header_text() -> impl Strategy<Value = String> {
    "[!-~]( ?[!-~]){0,20}"
}

fn content_type() -> impl Strategy<Value = ContentType> {
    prop_oneof![
        Just(ContentType::Wbxml),
        Just(ContentType::Mime),
        Just(ContentType::Missing),
        "[a-z]{1,8}/[a-z0-9.+-]{1,16}"
            .prop_filter("not a known type", |media_type| {
                !matches!(
                    ContentType::from_header(Some(media_type.as_bytes())),
                    ContentType::Wbxml | ContentType::Mime
                )
            })
            .prop_map(ContentType::Other),
    ]
}

/// A parameter value: any non-control text, short enough for the base64 form's length byte.
fn param_text() -> impl Strategy<Value = Option<String>> {
    option::of("\\PC{1,40}")
}

fn eas_request(style: QueryStyle) -> impl Strategy<Value = EasRequest> {
    let params = (
        param_text(),
        param_text(),
        param_text(),
        param_text(),
        param_text(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(attachment_name, collection_id, item_id, long_id, occurrence, save, multipart)| {
                CommandParams {
                    attachment_name,
                    collection_id,
                    item_id,
                    long_id,
                    occurrence,
                    save_in_sent: save,
                    accept_multipart: multipart,
                }
            },
        );
    let locale = match style {
        QueryStyle::Plain => Just(None).boxed(),
        QueryStyle::Base64 => any::<u16>().prop_map(Some).boxed(),
    };
    (
        command_and_version(),
        option::of("\\PC{1,40}"),
        "[A-Za-z0-9._-]{1,64}",
        "\\PC{1,32}",
        option::of(any::<u32>()),
        locale,
        params,
        content_type(),
        option::of(header_text()),
        option::of(header_text()),
    )
        .prop_map(
            move |(
                (command, version),
                user,
                device_id,
                device_type,
                policy_key,
                locale,
                params,
                content_type,
                user_agent,
                accept_language,
            )| {
                EasRequest {
                    command,
                    version,
                    user,
                    device_id: DeviceId::parse(&device_id)
                        .unwrap_or_else(|error| panic!("generated id {device_id:?}: {error}")),
                    device_type: DeviceType::parse(&device_type)
                        .unwrap_or_else(|error| panic!("generated type {device_type:?}: {error}")),
                    policy_key: policy_key.map(PolicyKey),
                    locale,
                    params,
                    content_type,
                    user_agent,
                    accept_language,
                }
            },
        )
}

fn round_trip(request: &EasRequest, style: QueryStyle) -> Result<(), TestCaseError> {
    let built = build_request(request, style, Vec::new())
        .map_err(|error| TestCaseError::fail(format!("encode: {error}")))?;
    prop_assert_eq!(parse_request(&built), Ok(request.clone()));
    Ok(())
}

proptest! {
    #[test]
    fn any_text_is_handled(query in "\\PC*") {
        let _ = parse_query(&query);
    }

    #[test]
    fn any_bytes_are_handled(bytes in vec(any::<u8>(), 0..400)) {
        let _ = parse_query(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn plain_like_queries_are_handled(query in plain_like_query()) {
        let _ = parse_query(&query);
    }

    #[test]
    fn base64_like_queries_are_handled(blob in blob_like(), escape in any::<bool>()) {
        let mut text = STANDARD.encode(&blob);
        if escape {
            text = text.replace('+', "%2B").replace('/', "%2F").replace('=', "%3D");
        }
        let _ = parse_query(&text);
    }

    #[test]
    fn whole_requests_are_handled(
        query in prop_oneof![plain_like_query(), blob_like().prop_map(|b| STANDARD.encode(b))],
        headers in eas_headers(),
    ) {
        let request = Request { query, headers, ..Request::default() };
        if let Err(error) = parse_request(&request) {
            let response = error.response();
            prop_assert!(matches!(response.status, 400 | 501));
        }
    }

    #[test]
    fn base64_requests_round_trip(request in eas_request(QueryStyle::Base64)) {
        round_trip(&request, QueryStyle::Base64)?;
    }

    #[test]
    fn plain_requests_round_trip(request in eas_request(QueryStyle::Plain)) {
        round_trip(&request, QueryStyle::Plain)?;
    }
}
