function decodeUplink(input) { return { data: { x: input.bytes[0] } ;
