/**
 * Where requests to a registered contact go: the Contact's own address, or the address the
 * REGISTER came from when the device is behind NAT (Kamailio's nat_uac_test and
 * fix_nated_register). A phone or PBX that registers from one socket for another (a
 * provisioning server, SIPp registering for its UAS) is reached at its Contact; a phone behind
 * NAT only through the mapping its REGISTER opened; a device on a stream only over its
 * connection.
 */
import type { Via } from '../sip/headers.js';
import { getParam, type SipUri } from '../sip/uri.js';
import { addressScope } from '../transport/addresses.js';
import type { Endpoint } from '../transport/endpoint.js';
import { TRANSPORTS, transportByName } from '../transport/names.js';

/** nat_uac_test flag 1: the Contact names a private address (RFC 1918, RFC 6598, IPv6 ULA). */
export const NAT_PRIVATE_CONTACT = 1;
/** Flag 2: the top Via's host is not the address the request came from. */
export const NAT_VIA_NOT_SOURCE = 2;
/** Flag 4: the top Via names a private address. */
export const NAT_PRIVATE_VIA = 4;
/** Flag 16: the top Via's port (5060 when absent) is not the port the request came from. */
export const NAT_VIA_PORT_NOT_SOURCE = 16;

/** The nat_uac_test flags (1, 2, 4, 16) that hold for a contact registered by a request from source with this top Via; 0: no NAT seen. */
export function natFlags(contact: SipUri, via: Via, source: Endpoint): number {
  let flags = 0;
  if (addressScope(contact.host) === 'private') flags |= NAT_PRIVATE_CONTACT;
  if (via.host !== source.address) flags |= NAT_VIA_NOT_SOURCE;
  if (addressScope(via.host) === 'private') flags |= NAT_PRIVATE_VIA;
  if ((via.port || 5060) !== source.port) flags |= NAT_VIA_PORT_NOT_SOURCE;
  return flags;
}

/**
 * Where requests to contact go, for a REGISTER from source with this top Via. source itself
 * (the same object, keeping the listener it reached) over a stream, when NAT shows, or when
 * the Contact cannot be reached directly (a host name: no DNS here; sips: or a transport we do
 * not speak; a loopback address from another host); else the Contact's address, port (5060 when absent) and transport (UDP when
 * absent, RFC 3263 §4.1).
 */
export function contactDest(contact: SipUri, via: Via, source: Endpoint): Endpoint {
  if (TRANSPORTS[source.transport].reliable || natFlags(contact, via, source) !== 0) return source;
  if (contact.scheme !== 'sip') return source;
  const scope = addressScope(contact.host);
  if (scope === undefined || scope === 'unspecified') return source;
  // A loopback Contact from another host names nothing we could reach (only ourselves).
  if (scope === 'loopback' && addressScope(source.address) !== 'loopback') return source;
  const param = getParam(contact.params, 'transport');
  const kind = param === undefined ? TRANSPORTS.udp : transportByName(param.toLowerCase());
  if (kind === undefined) return source;
  const port = contact.port || 5060;
  if (kind.name === source.transport && port === source.port && contact.host === source.address) return source;
  return { transport: kind.name, address: contact.host, port };
}
