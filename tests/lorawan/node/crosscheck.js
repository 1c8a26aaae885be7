// Cross-check helper: reads a JSON list of requests on stdin, answers a JSON list on stdout,
// using the independent lora-packet implementation. Multi-byte fields are big-endian hex.
const lora = require("lora-packet").default || require("lora-packet");

const hex = (s) => Buffer.from(s || "", "hex");

function handle(req) {
  switch (req.op) {
    case "decode_data": {
      const p = lora.fromWire(hex(req.phy));
      const msb = hex(req.fcnt_msb || "0000");
      return {
        mtype: p.getMType(),
        dev_addr: p.DevAddr.toString("hex"),
        fcnt: p.getFCnt(),
        fport: p.getFPort(),
        ack: p.getFCtrlACK(),
        fpending: p.getFCtrlFPending(),
        fopts: p.FOpts ? p.FOpts.toString("hex") : "",
        mic_ok: lora.verifyMIC(p, hex(req.nwk_skey), undefined, msb),
        payload: p.FRMPayload && p.FRMPayload.length ? lora.decrypt(p, hex(req.app_skey), hex(req.nwk_skey), msb).toString("hex") : "",
      };
    }
    case "build_data": {
      const p = lora.fromFields({
        MType: req.mtype, DevAddr: hex(req.dev_addr), FCnt: req.fcnt & 0xffff,
        FCtrl: { ACK: !!req.ack, ADR: !!req.adr }, FPort: req.fport, payload: hex(req.payload),
        FOpts: hex(req.fopts || ""),
      }, hex(req.app_skey), hex(req.nwk_skey), undefined, hex(req.fcnt_msb || "0000"));
      return { phy: p.getPHYPayload().toString("hex") };
    }
    case "build_join_request": {
      const p = lora.fromFields({
        MType: "Join Request", AppEUI: hex(req.app_eui), DevEUI: hex(req.dev_eui), DevNonce: hex(req.dev_nonce),
      }, null, null, hex(req.app_key));
      return { phy: p.getPHYPayload().toString("hex") };
    }
    case "decode_join_request": {
      const p = lora.fromWire(hex(req.phy));
      return {
        mtype: p.getMType(), app_eui: p.AppEUI.toString("hex"), dev_eui: p.DevEUI.toString("hex"),
        dev_nonce: p.DevNonce.toString("hex"), mic_ok: lora.verifyMIC(p, null, hex(req.app_key)),
      };
    }
    case "decode_join_accept": {
      const enc = lora.fromWire(hex(req.phy));
      const p = lora.fromWire(lora.decryptJoinAccept(enc, hex(req.app_key)));
      const keys = lora.generateSessionKeys(hex(req.app_key), p.NetID, p.AppNonce, hex(req.dev_nonce));
      return {
        mtype: p.getMType(), app_nonce: p.AppNonce.toString("hex"), net_id: p.NetID.toString("hex"),
        dev_addr: p.DevAddr.toString("hex"), rx1_dr_offset: p.getDLSettingsRxOneDRoffset(),
        rx2_dr: p.getDLSettingsRxTwoDataRate(), rx_delay: p.getRxDelayDel(),
        mic_ok: lora.verifyMIC(p, null, hex(req.app_key)),
        nwk_skey: keys.NwkSKey.toString("hex"), app_skey: keys.AppSKey.toString("hex"),
      };
    }
    default:
      throw new Error("unknown op " + req.op);
  }
}

let input = "";
process.stdin.on("data", (d) => (input += d));
process.stdin.on("end", () => {
  const out = JSON.parse(input).map((req) => {
    try { return handle(req); } catch (e) { return { error: String(e) }; }
  });
  process.stdout.write(JSON.stringify(out));
});
