/**
 * Builds what a fork sends for one request (its ForkHost): each branch's request with our Via
 * (and Record-Route for an INVITE), the branches' CANCEL and ACK, and the final responses
 * generated here. Holds the request and its shared edits until the fork lets go of it.
 */
import { buildRequest } from '../sip/build-request.js';
import { isAsciiString } from '../sip/message.js';
import { rewrite, stripTopVia } from '../sip/serialize.js';
import type { LocalIds } from '../transaction/ids.js';
import type { TransactionLayer } from '../transaction/layer.js';
import type { IncomingRequest } from '../transaction/request.js';
import type { Endpoint } from '../transport/endpoint.js';
import type { LocalAddress } from '../transport/transport.js';
import type { ForkHost } from './fork.js';
import { remainingRouteLines, type ForwardEdits } from './forward-edits.js';
import { localResponse } from './local-response.js';
import { loopHash } from './loop-detection.js';
import { recordRoute } from './record-route.js';
import { ourVia } from '../transport/via.js';

export interface BranchContext {
  layer: TransactionLayer;
  ids: LocalIds;
  localFor(dest: Endpoint): LocalAddress;
}

export function branchRequests(ctx: BranchContext, inc: IncomingRequest, fwd: ForwardEdits, recordRouted: boolean): ForkHost {
  const req = inc.req;
  const edits = fwd.edits;
  const mfLine = fwd.addMaxForwards;
  const routeLines = remainingRouteLines(req, edits);
  const hash = loopHash(inc);
  const ids = ctx.ids;
  return {
    layer: ctx.layer,
    newBranchId: () => ids.branch(hash),
    upstream: stripTopVia, // not a closure here: the fork keeps it after it let go of the rest
    localResponse: (status, reason) => localResponse(inc, ids, status, reason),
    buildBranchRequest(target, branchId) {
      const local = ctx.localFor(target.dest);
      let prepend = `Via: ${ourVia(local, branchId)}\r\n`;
      if (recordRouted) prepend += recordRoute(inc.local, local);
      if (mfLine) prepend += `${mfLine}\r\n`;
      if (target.route !== undefined) prepend += target.route;
      // Our Via and Record-Route name hosts the config validated as IP addresses or host names.
      return rewrite(req, `${req.method} ${target.uri} SIP/2.0`, prepend, edits, req.isAscii && isAsciiString(target.uri));
    },
    buildBranchAux(method, target, branchId, to, extra) {
      return buildRequest({
        method,
        uri: target.uri,
        via: ourVia(ctx.localFor(target.dest), branchId),
        from: req.header('from') ?? '',
        to,
        callId: inc.callId,
        cseq: inc.cseq,
        routeLines: target.route === undefined ? routeLines : target.route + routeLines,
        extra,
        ascii: req.isAscii && isAsciiString(target.uri) && isAsciiString(to) && extra.every(isAsciiString),
      });
    },
  };
}
