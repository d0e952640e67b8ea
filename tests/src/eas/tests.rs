//! The client's own checks: request bytes against the spec digest's worked encodings, request
//! structure through libwbxml, and answer parsing.

use anyhow::{Context, Result};
use eas_wbxml::tags::{air_sync as as_, air_sync_base as asb, email as em, folder_hierarchy as fh};
use eas_wbxml::{Document, Element};

use super::request::{self, ClientCommand, EstimateCollection, FetchRequest};
use super::*;

fn encode(document: &Document) -> Vec<u8> {
    eas_wbxml::encode(document).expect("encodes")
}

fn unhex(text: &str) -> Vec<u8> {
    let digits: String = text.chars().filter(char::is_ascii_hexdigit).collect();
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).expect("hex"))
        .collect()
}

/// libwbxml's outline of what we would send, or `None` (skipped) without the tool.
fn libwbxml_outline(document: &Document) -> Result<Option<String>> {
    Ok(libwbxml::decode(&encode(document))?.map(|node| node.outline()))
}

fn assert_outline(document: &Document, expected: &str) -> Result<()> {
    if let Some(actual) = libwbxml_outline(document)? {
        let expected = expected.trim_start_matches('\n');
        assert_eq!(actual, expected, "libwbxml reads our request differently:\n{actual}");
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Bytes from EAS-NOTES §2.5 (checked there with wbxml2xml)

#[test]
fn folder_sync_zero_is_the_worked_example() {
    assert_eq!(encode(&request::folder_sync("0")), unhex("03 01 6a 00 00 07 56 52 03 30 00 01 01"));
}

#[test]
fn sync_zero_is_the_worked_example() {
    let sync = SyncRequest::one(SyncCollection::new("0", "5"));
    for version in Version::TESTED {
        assert_eq!(
            encode(&sync.document(version)),
            unhex("03 01 6a 00 45 5c 4f 4b 03 30 00 01 52 03 35 00 01 01 01 01"),
            "{version}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Structure through libwbxml

#[test]
fn sync_request_with_options_and_commands_through_libwbxml() -> Result<()> {
    let read = Element::new(as_::APPLICATION_DATA).text_child(em::READ, "1");
    let collection = SyncCollection::new("a1b2:3", "7")
        .get_changes(true)
        .window(100)
        .options(SyncOptions {
            filter_type: Some(3),
            body_preferences: vec![
                BodyPreference::truncated(2, 200_000).with_preview(255),
                BodyPreference::new(4).all_or_none(true),
            ],
            mime_support: Some(2),
            ..SyncOptions::default()
        })
        .command(ClientCommand::Change { server_id: "7:42".into(), application_data: read })
        .command(ClientCommand::Delete { server_id: "7:43".into() })
        .command(ClientCommand::Fetch { server_id: "7:44".into() });
    let sync = SyncRequest { window_size: Some(200), ..SyncRequest::one(collection) };
    assert_outline(
        &sync.document(Version::V16_1),
        "
AirSync:Sync
  AirSync:Collections
    AirSync:Collection
      AirSync:SyncKey = a1b2:3
      AirSync:CollectionId = 7
      AirSync:GetChanges
      AirSync:WindowSize = 100
      AirSync:Options
        AirSync:FilterType = 3
        AirSyncBase:BodyPreference
          AirSyncBase:Type = 2
          AirSyncBase:TruncationSize = 200000
          AirSyncBase:Preview = 255
        AirSyncBase:BodyPreference
          AirSyncBase:Type = 4
          AirSyncBase:AllOrNone = 1
        AirSync:MIMESupport = 2
      AirSync:Commands
        AirSync:Change
          AirSync:ServerId = 7:42
          AirSync:ApplicationData
            Email:Read = 1
        AirSync:Delete
          AirSync:ServerId = 7:43
        AirSync:Fetch
          AirSync:ServerId = 7:44
  AirSync:WindowSize = 200
",
    )
}

#[test]
fn class_moves_between_collection_and_options_by_version() -> Result<()> {
    let collection = SyncCollection::new("k", "3")
        .class("Email")
        .options(SyncOptions::bodies([BodyPreference::truncated(1, 500)]));
    assert_outline(
        &SyncRequest::one(collection.clone()).document(Version::V12_1),
        "
AirSync:Sync
  AirSync:Collections
    AirSync:Collection
      AirSync:Class = Email
      AirSync:SyncKey = k
      AirSync:CollectionId = 3
      AirSync:Options
        AirSyncBase:BodyPreference
          AirSyncBase:Type = 1
          AirSyncBase:TruncationSize = 500
",
    )?;
    assert_outline(
        &SyncRequest::one(collection).document(Version::V14_1),
        "
AirSync:Sync
  AirSync:Collections
    AirSync:Collection
      AirSync:SyncKey = k
      AirSync:CollectionId = 3
      AirSync:Options
        AirSync:Class = Email
        AirSyncBase:BodyPreference
          AirSyncBase:Type = 1
          AirSyncBase:TruncationSize = 500
",
    )
}

#[test]
fn get_item_estimate_per_version_through_libwbxml() -> Result<()> {
    let collections =
        [EstimateCollection { filter_type: Some(0), ..EstimateCollection::new("k:1", "9") }];
    assert_outline(
        &request::get_item_estimate(&collections, Version::V16_1),
        "
GetItemEstimate:GetItemEstimate
  GetItemEstimate:Collections
    GetItemEstimate:Collection
      AirSync:SyncKey = k:1
      GetItemEstimate:CollectionId = 9
      AirSync:Options
        AirSync:FilterType = 0
",
    )?;
    assert_outline(
        &request::get_item_estimate(&collections, Version::V12_1),
        "
GetItemEstimate:GetItemEstimate
  GetItemEstimate:Collections
    GetItemEstimate:Collection
      GetItemEstimate:Class = Email
      GetItemEstimate:CollectionId = 9
      AirSync:FilterType = 0
      AirSync:SyncKey = k:1
",
    )
}

#[test]
fn item_operations_fetch_through_libwbxml() -> Result<()> {
    let fetches = [
        FetchRequest::item("5", "5:12").body(BodyPreference::new(1)),
        FetchRequest { mime_support: Some(2), ..FetchRequest::item("5", "5:13") }
            .body(BodyPreference::new(4)),
        FetchRequest::attachment("5:12:2"),
    ];
    assert_outline(
        &request::item_operations(&fetches),
        "
ItemOperations:ItemOperations
  ItemOperations:Fetch
    ItemOperations:Store = Mailbox
    AirSync:CollectionId = 5
    AirSync:ServerId = 5:12
    ItemOperations:Options
      AirSyncBase:BodyPreference
        AirSyncBase:Type = 1
  ItemOperations:Fetch
    ItemOperations:Store = Mailbox
    AirSync:CollectionId = 5
    AirSync:ServerId = 5:13
    ItemOperations:Options
      AirSync:MIMESupport = 2
      AirSyncBase:BodyPreference
        AirSyncBase:Type = 4
  ItemOperations:Fetch
    ItemOperations:Store = Mailbox
    AirSyncBase:FileReference = 5:12:2
",
    )
}

#[test]
fn people_and_conversation_searches_through_libwbxml() -> Result<()> {
    assert_outline(
        &directory::resolve_recipients(&["zoe@example.org", "Qu"]),
        "
ResolveRecipients:ResolveRecipients
  ResolveRecipients:To = zoe@example.org
  ResolveRecipients:To = Qu
",
    )?;
    assert_outline(
        &directory::gal_search("quinn", (0, 9)),
        "
Search:Search
  Search:Store
    Search:Name = GAL
    Search:Query = quinn
    Search:Options
      Search:Range = 0-9
",
    )?;
    let mut query = write::MailboxQuery::new("");
    query.conversation_id = Some(vec![0xAB; 16]); // libwbxml shows OPAQUE as base64
    assert_outline(
        &query.search_document(),
        "
Search:Search
  Search:Store
    Search:Name = Mailbox
    Search:Query
      Search:And
        AirSync:Class = Email
        Search:ConversationId = q6urq6urq6urq6urq6urqw==
    Search:Options
",
    )
}

#[test]
fn provision_and_settings_through_libwbxml() -> Result<()> {
    let info = DeviceInformation {
        model: "iPhone16,2".into(),
        imei: None,
        friendly_name: Some("Test".into()),
        os: Some("iOS 17.5".into()),
        os_language: None,
        phone_number: None,
        user_agent: Some("Apple-iPhone16C2/2105.90".into()),
        mobile_operator: None,
    };
    assert_outline(
        &request::provision_request(Version::V14_1, &info),
        "
Provision:Provision
  Settings:DeviceInformation
    Settings:Set
      Settings:Model = iPhone16,2
      Settings:FriendlyName = Test
      Settings:OS = iOS 17.5
      Settings:UserAgent = Apple-iPhone16C2/2105.90
  Provision:Policies
    Provision:Policy
      Provision:PolicyType = MS-EAS-Provisioning-WBXML
",
    )?;
    // 12.1 and 14.0 MUST NOT send DeviceInformation in Provision
    assert_outline(
        &request::provision_request(Version::V12_1, &info),
        "
Provision:Provision
  Provision:Policies
    Provision:Policy
      Provision:PolicyType = MS-EAS-Provisioning-WBXML
",
    )?;
    assert_outline(
        &request::provision_acknowledge(3_942_919_513),
        "
Provision:Provision
  Provision:Policies
    Provision:Policy
      Provision:PolicyType = MS-EAS-Provisioning-WBXML
      Provision:PolicyKey = 3942919513
      Provision:Status = 1
",
    )?;
    assert_outline(
        &request::settings_user_information(),
        "
Settings:Settings
  Settings:UserInformation
    Settings:Get
",
    )?;
    assert_outline(
        &request::folder_sync("f:2"),
        "
FolderHierarchy:FolderSync
  FolderHierarchy:SyncKey = f:2
",
    )
}

#[test]
fn libwbxml_sees_a_wrong_token_that_our_codec_would_not() -> Result<()> {
    // Sync > Collections > Collection with WindowSize written as token 0x14 (MoreAvailable):
    // our own decoder reads it back "consistently"; libwbxml names the tag from its own table.
    let bytes = unhex("03 01 6a 00 45 5c 4f 4b 03 30 00 01 54 03 35 00 01 01 01 01");
    if let Some(node) = libwbxml::decode(&bytes)? {
        let outline = node.outline();
        assert!(outline.contains("AirSync:MoreAvailable = 5"), "{outline}");
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Answers

#[test]
fn sync_answer_is_read_into_collections_and_commands() -> Result<()> {
    let add = Element::new(as_::ADD).text_child(as_::SERVER_ID, "5:1").with_child(
        Element::new(as_::APPLICATION_DATA)
            .text_child(em::SUBJECT, "Hello")
            .text_child(em::DATE_RECEIVED, "2025-06-02T09:00:00.000Z")
            .with_child(
                Element::new(asb::BODY)
                    .text_child(asb::TYPE, "2")
                    .text_child(asb::DATA, "<p>x</p>"),
            ),
    );
    let change = Element::new(as_::CHANGE)
        .text_child(as_::SERVER_ID, "5:2")
        .with_child(Element::new(as_::APPLICATION_DATA).text_child(em::READ, "1"));
    let root = Element::new(as_::SYNC).with_child(
        Element::new(as_::COLLECTIONS).with_child(
            Element::new(as_::COLLECTION)
                .text_child(as_::SYNC_KEY, "k2")
                .text_child(as_::COLLECTION_ID, "5")
                .text_child(as_::STATUS, "1")
                .empty_child(as_::MORE_AVAILABLE)
                .with_child(
                    Element::new(as_::COMMANDS)
                        .with_child(add)
                        .with_child(change)
                        .with_child(Element::new(as_::DELETE).text_child(as_::SERVER_ID, "5:3")),
                ),
        ),
    );
    let raw = encode(&Document::new(root.clone()));
    let answer = SyncAnswer::parse(raw.clone(), Some(root))?;
    assert_eq!(answer.raw, raw);
    let collection = answer.collection("5").context("collection 5")?;
    assert_eq!((collection.status, collection.more_available), (Some(1), true));
    assert_eq!(collection.sync_key.as_deref(), Some("k2"));
    let kinds: Vec<_> = collection.commands.iter().map(|c| c.kind).collect();
    assert_eq!(kinds, [CommandKind::Add, CommandKind::Change, CommandKind::Delete]);
    let email = collection.commands[0].email()?;
    assert_eq!(email.date_received_unix()?, 1_748_854_800);
    assert_eq!(email.body.context("body")?.text(), "<p>x</p>");
    assert_eq!(collection.commands[1].email()?.element_names, ["Read"]);
    assert!(SyncAnswer::parse(Vec::new(), None)?.is_empty());
    Ok(())
}

#[test]
fn folder_sync_answer_is_read_into_changes() -> Result<()> {
    let folder = |id: &str, parent: &str, name: &str, kind: &str| {
        Element::new(fh::ADD)
            .text_child(fh::SERVER_ID, id)
            .text_child(fh::PARENT_ID, parent)
            .text_child(fh::DISPLAY_NAME, name)
            .text_child(fh::TYPE, kind)
    };
    let root = Element::new(fh::FOLDER_SYNC)
        .text_child(fh::STATUS, "1")
        .text_child(fh::SYNC_KEY, "f1")
        .with_child(
            Element::new(fh::CHANGES)
                .text_child(fh::COUNT, "3")
                .with_child(folder("1", "0", "Inbox", "2"))
                .with_child(folder("2", "1", "Sub", "12"))
                .with_child(Element::new(fh::DELETE).text_child(fh::SERVER_ID, "9")),
        );
    let answer = FolderSyncAnswer::parse(root)?;
    assert_eq!((answer.status, answer.count, answer.change_count()), (1, Some(3), 3));
    assert_eq!(answer.adds[1].parent_id, "1");
    assert_eq!(answer.deletes, ["9"]);
    Ok(())
}

#[test]
fn user_information_finds_addresses_in_both_forms() -> Result<()> {
    use eas_wbxml::tags::settings as st;
    let old = Element::new(st::SETTINGS).text_child(st::STATUS, "1").with_child(
        Element::new(st::USER_INFORMATION).text_child(st::STATUS, "1").with_child(
            Element::new(st::GET).with_child(
                Element::new(st::EMAIL_ADDRESSES).text_child(st::SMTP_ADDRESS, "a@example.test"),
            ),
        ),
    );
    let user = SettingsAnswer::parse(old)?.user_information.context("user information")?;
    assert_eq!(user.smtp_addresses, ["a@example.test"]);
    let new = Element::new(st::SETTINGS).text_child(st::STATUS, "1").with_child(
        Element::new(st::USER_INFORMATION).text_child(st::STATUS, "1").with_child(
            Element::new(st::GET).with_child(
                Element::new(st::ACCOUNTS).with_child(
                    Element::new(st::ACCOUNT).with_child(
                        Element::new(st::EMAIL_ADDRESSES)
                            .text_child(st::SMTP_ADDRESS, "a@example.test")
                            .text_child(st::PRIMARY_SMTP_ADDRESS, "a@example.test"),
                    ),
                ),
            ),
        ),
    );
    let user = SettingsAnswer::parse(new)?.user_information.context("user information")?;
    assert_eq!(user.primary_smtp_address.as_deref(), Some("a@example.test"));
    Ok(())
}

#[test]
fn the_user_is_percent_encoded_in_the_url() {
    let device = Device::new(
        "http://h/Microsoft-Server-ActiveSync",
        "a b@example.test",
        "pw",
        "DEV1",
        Version::V16_1,
    );
    assert_eq!(
        device.command_url("Sync"),
        "http://h/Microsoft-Server-ActiveSync?Cmd=Sync&User=a%20b%40example.test&DeviceId=DEV1&DeviceType=iPhone"
    );
}
