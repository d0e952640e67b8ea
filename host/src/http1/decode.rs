//! Taking a request body off the bytes of a connection: a fixed length, or chunked transfer
//! coding (RFC 9112 §7.1), decoded incrementally so that no chunk, extension or trailer is ever
//! buffered whole. Pure: the connection feeds it whatever it has read.

use super::head::Framing;
use std::ops::Range;

/// Hex digits of a chunk size beyond which the size cannot be real (16 digits is 2^64).
const MAX_SIZE_DIGITS: u8 = 15;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

#[derive(Debug)]
pub struct BodyDecoder {
    state: State,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Length {
        remaining: u64,
    },
    /// Hex digits of a chunk size.
    Size {
        value: u64,
        digits: u8,
    },
    /// A chunk extension, or the CR, up to the LF that ends the size line.
    SizeLineEnd {
        value: u64,
    },
    Data {
        remaining: u64,
    },
    /// The CRLF after a chunk's data.
    DataEnd {
        seen_cr: bool,
    },
    /// Trailer fields up to the empty line; `line_start` says no byte of the line was seen yet.
    Trailer {
        line_start: bool,
    },
    Done,
}

/// What one [`BodyDecoder::decode`] call did with the input.
#[derive(Debug, PartialEq, Eq)]
pub struct Step {
    /// Bytes of the input that are used up (framing and data alike).
    pub consumed: usize,
    /// Where in the input the body bytes of this step are, if any.
    pub data: Option<Range<usize>>,
}

impl BodyDecoder {
    pub fn new(framing: Framing) -> BodyDecoder {
        let state = match framing {
            Framing::Empty | Framing::Length(0) => State::Done,
            Framing::Length(remaining) => State::Length { remaining },
            Framing::Chunked => State::Size { value: 0, digits: 0 },
        };
        BodyDecoder { state }
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Body bytes still expected, when the framing says (a fixed length).
    pub fn remaining_length(&self) -> Option<u64> {
        match self.state {
            State::Length { remaining } => Some(remaining),
            State::Done => Some(0),
            _ => None,
        }
    }

    /// Consumes framing from the start of `input` up to the first run of body bytes, which it
    /// returns (consumed too), or until the input or the body ends.
    pub fn decode(&mut self, input: &[u8]) -> Result<Step, Malformed> {
        let mut at = 0;
        while at < input.len() {
            match self.state {
                State::Done => break,
                State::Length { remaining } | State::Data { remaining } => {
                    let take =
                        (input.len() - at).min(usize::try_from(remaining).unwrap_or(usize::MAX));
                    let left = remaining - take as u64;
                    self.state = match self.state {
                        State::Length { .. } if left == 0 => State::Done,
                        State::Length { .. } => State::Length { remaining: left },
                        _ if left == 0 => State::DataEnd { seen_cr: false },
                        _ => State::Data { remaining: left },
                    };
                    return Ok(Step { consumed: at + take, data: Some(at..at + take) });
                }
                _ => {
                    self.state = self.framing_byte(input[at])?;
                    at += 1;
                }
            }
        }
        Ok(Step { consumed: at, data: None })
    }

    /// The chunked state after one byte of framing (sizes, extensions, line ends, trailers).
    fn framing_byte(&self, byte: u8) -> Result<State, Malformed> {
        Ok(match self.state {
            State::Size { value, digits } => match byte {
                b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' if digits < MAX_SIZE_DIGITS => {
                    let digit = u64::from(char::from(byte).to_digit(16).ok_or(Malformed)?);
                    State::Size { value: value * 16 + digit, digits: digits + 1 }
                }
                b';' | b' ' | b'\t' | b'\r' if digits > 0 => State::SizeLineEnd { value },
                b'\n' if digits > 0 => after_size_line(value),
                _ => return Err(Malformed),
            },
            State::SizeLineEnd { value } => match byte {
                b'\n' => after_size_line(value),
                _ => State::SizeLineEnd { value },
            },
            State::DataEnd { seen_cr } => match byte {
                b'\r' if !seen_cr => State::DataEnd { seen_cr: true },
                b'\n' => State::Size { value: 0, digits: 0 },
                _ => return Err(Malformed),
            },
            State::Trailer { line_start } => match byte {
                b'\n' if line_start => State::Done,
                b'\n' => State::Trailer { line_start: true },
                b'\r' => State::Trailer { line_start },
                _ => State::Trailer { line_start: false },
            },
            State::Length { .. } | State::Data { .. } | State::Done => self.state,
        })
    }
}

fn after_size_line(size: u64) -> State {
    if size == 0 { State::Trailer { line_start: true } } else { State::Data { remaining: size } }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `wire` in pieces of `piece` bytes, as reads would deliver it; returns the body and
    /// how many bytes of the wire it used.
    fn decode_all(
        framing: Framing,
        wire: &[u8],
        piece: usize,
    ) -> Result<(Vec<u8>, usize), Malformed> {
        let mut decoder = BodyDecoder::new(framing);
        let (mut body, mut used, mut available) = (Vec::new(), 0, 0);
        while !decoder.is_done() {
            if used == available {
                if available == wire.len() {
                    break;
                }
                available = (available + piece).min(wire.len());
            }
            let step = decoder.decode(&wire[used..available])?;
            if let Some(range) = step.data {
                body.extend_from_slice(&wire[used + range.start..used + range.end]);
            }
            used += step.consumed;
        }
        assert!(decoder.is_done(), "body not complete");
        Ok((body, used))
    }

    #[test]
    fn a_fixed_length_stops_at_its_end() {
        let (body, used) = decode_all(Framing::Length(5), b"hello GET / HTTP/1.1", 3).expect("ok");
        assert_eq!((body.as_slice(), used), (&b"hello"[..], 5));
        assert!(BodyDecoder::new(Framing::Empty).is_done());
    }

    #[test]
    fn chunked_bodies_decode_whatever_the_read_sizes() {
        let wire = b"5;name=value\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\
                     Trailer: x\r\n\r\nNEXT";
        for piece in 1..wire.len() {
            let (body, used) = decode_all(Framing::Chunked, wire, piece).expect("valid");
            assert_eq!(body, b"helloabcdefghijklmnopqrstuvwxyz", "piece {piece}");
            assert_eq!(&wire[used..], b"NEXT");
        }
        // bare LF line ends, as some clients write them
        let (body, _) = decode_all(Framing::Chunked, b"3\nabc\n0\n\n", 4).expect("valid");
        assert_eq!(body, b"abc");
    }

    #[test]
    fn broken_chunk_framing_is_malformed() {
        for wire in [&b"x\r\n"[..], b"\r\n", b"3\r\nabcX\r\n", b"ffffffffffffffffff\r\n"] {
            assert_eq!(decode_all(Framing::Chunked, wire, 2).err(), Some(Malformed), "{wire:?}");
        }
    }

    #[test]
    fn the_remaining_length_is_known_only_for_a_fixed_length() {
        let mut decoder = BodyDecoder::new(Framing::Length(10));
        assert_eq!(decoder.decode(b"abcd").expect("ok").data, Some(0..4));
        assert_eq!(decoder.remaining_length(), Some(6));
        assert_eq!(BodyDecoder::new(Framing::Chunked).remaining_length(), None);
    }
}
