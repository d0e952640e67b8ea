//! `eas-edge wbxml decode|encode`: read a captured EAS body as XML, and turn XML back into it.

use anyhow::{Context, bail};
use base64::Engine as _;
use std::io::{Read, Write};
use std::path::Path;

/// How WBXML bytes are written on the command line or in a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ByteFormat {
    /// Guess: hex digits (spaces allowed), else base64, else raw bytes.
    Auto,
    Hex,
    Base64,
    Binary,
}

/// Reads `input` (a path, or `-` for stdin) and prints its XML rendering.
pub fn decode(input: &Path, format: ByteFormat) -> anyhow::Result<String> {
    let raw = read_input(input)?;
    let bytes = to_bytes(&raw, format)?;
    let document = eas_wbxml::decode(&bytes, &eas_wbxml::Limits::default())
        .map_err(|error| anyhow::anyhow!("not valid EAS WBXML: {error}"))?;
    Ok(eas_wbxml::to_xml(&document))
}

/// Reads XML from `input` and returns the WBXML bytes in `format` (`Auto` means hex).
pub fn encode(input: &Path, format: ByteFormat) -> anyhow::Result<Vec<u8>> {
    let raw = read_input(input)?;
    let text = String::from_utf8(raw).context("the XML is not UTF-8")?;
    let document = eas_wbxml::from_xml(&text)
        .map_err(|error| anyhow::anyhow!("cannot read the XML: {error}"))?;
    let bytes = eas_wbxml::encode(&document)
        .map_err(|error| anyhow::anyhow!("cannot encode the document: {error}"))?;
    Ok(match format {
        ByteFormat::Auto | ByteFormat::Hex => {
            let mut hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            hex.push('\n');
            hex.into_bytes()
        }
        ByteFormat::Base64 => {
            let mut text = base64::engine::general_purpose::STANDARD.encode(&bytes);
            text.push('\n');
            text.into_bytes()
        }
        ByteFormat::Binary => bytes,
    })
}

pub fn write_stdout(bytes: &[u8]) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(bytes)?;
    stdout.flush()?;
    Ok(())
}

fn read_input(input: &Path) -> anyhow::Result<Vec<u8>> {
    if input == Path::new("-") {
        let mut bytes = Vec::new();
        std::io::stdin().read_to_end(&mut bytes).context("reading stdin")?;
        Ok(bytes)
    } else {
        std::fs::read(input).with_context(|| format!("reading {}", input.display()))
    }
}

fn to_bytes(raw: &[u8], format: ByteFormat) -> anyhow::Result<Vec<u8>> {
    match format {
        ByteFormat::Binary => Ok(raw.to_vec()),
        ByteFormat::Hex => from_hex(raw).context("not hex"),
        ByteFormat::Base64 => from_base64(raw).context("not base64"),
        ByteFormat::Auto => {
            // A WBXML body starts with 0x03, which is never a hex digit or base64 character.
            if raw.first() == Some(&0x03) {
                return Ok(raw.to_vec());
            }
            if let Ok(bytes) = from_hex(raw) {
                return Ok(bytes);
            }
            match from_base64(raw) {
                Ok(bytes) => Ok(bytes),
                Err(_) => bail!("input is neither WBXML, hex nor base64; pass --format"),
            }
        }
    }
}

fn from_hex(raw: &[u8]) -> anyhow::Result<Vec<u8>> {
    let digits: Vec<u8> = raw.iter().copied().filter(|b| !b.is_ascii_whitespace()).collect();
    if digits.is_empty() || !digits.len().is_multiple_of(2) {
        bail!("an even, non-zero number of hex digits is needed");
    }
    digits
        .chunks(2)
        .map(|pair| {
            let text = std::str::from_utf8(pair)?;
            Ok(u8::from_str_radix(text, 16)?)
        })
        .collect()
}

fn from_base64(raw: &[u8]) -> anyhow::Result<Vec<u8>> {
    let text: Vec<u8> = raw.iter().copied().filter(|b| !b.is_ascii_whitespace()).collect();
    Ok(base64::engine::general_purpose::STANDARD.decode(text)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FOLDER_SYNC: [u8; 13] =
        [0x03, 0x01, 0x6A, 0x00, 0x00, 0x07, 0x56, 0x52, 0x03, b'0', 0x00, 0x01, 0x01];

    #[test]
    fn auto_detects_every_input_form() {
        let hex = b"03 01 6a 00 00 07 56 52 03 30 00 01 01\n";
        let b64 = base64::engine::general_purpose::STANDARD.encode(FOLDER_SYNC);
        for raw in [&FOLDER_SYNC[..], &hex[..], b64.as_bytes()] {
            assert_eq!(to_bytes(raw, ByteFormat::Auto).expect("detected"), FOLDER_SYNC);
        }
        assert!(to_bytes(b"not anything!", ByteFormat::Auto).is_err());
        assert!(to_bytes(b"abc", ByteFormat::Hex).is_err());
    }
}
