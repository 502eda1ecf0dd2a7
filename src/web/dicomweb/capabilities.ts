/**
 * The Retrieve Capabilities transaction (PS3.18 8.9, Annex H): `OPTIONS /dicom-web` answers a
 * WADL document of every DICOMweb resource this server serves, and `OPTIONS` on any resource
 * path answers the same for that resource and its children. The document is built from the
 * routes actually registered (web/app.ts registeredRoutes), so it cannot claim a transaction the
 * server does not serve or miss one it does. `Accept: application/json` gets the same tree as
 * JSON (PS3.18 2014-2017 named it; there is no normative JSON form of WADL).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { httpError } from '../errors.js';
import { acceptOf, rangeMatches } from '../media-type.js';
import type { RegisteredRoute } from '../route-table.js';
import { DICOMWEB_PREFIX, type DicomwebContext, serviceUrl } from './context.js';

const WADL = 'application/vnd.sun.wadl+xml';

interface MethodInfo {
  readonly name: string;
  readonly id: string;
  readonly produces: readonly string[];
  readonly consumes: readonly string[];
}

interface ResourceNode {
  /** The segment as WADL writes it: `studies`, `{study}`. */
  readonly path: string;
  readonly methods: MethodInfo[];
  readonly children: ResourceNode[];
}

const DICOM_JSON = 'application/dicom+json';
const MULTIPART_DICOM = 'multipart/related; type="application/dicom"';
const MULTIPART_OCTET = 'multipart/related; type="application/octet-stream"';
const MULTIPART_XML = 'multipart/related; type="application/dicom+xml"';

/** The transaction a route performs, by its method and its path below /dicom-web (PS3.18 Table H-1). */
function transactionOf(
  method: string,
  segments: readonly string[],
): { id: string; produces: string[]; consumes: string[] } {
  const levels = segments.filter((s) => s.startsWith(':')).length;
  const last = segments[segments.length - 1] ?? '';
  const level = ['', 'Study', 'Series', 'Instance'][levels] ?? 'Instance';
  const none: string[] = [];
  if (method === 'POST')
    return {
      id: levels === 0 ? 'StoreInstances' : 'StoreStudyInstances',
      produces: [DICOM_JSON],
      consumes: [MULTIPART_DICOM, 'multipart/related; type="application/dicom+json"'],
    };
  if (segments[0] === 'wado')
    return {
      id: 'RetrieveWADOURI',
      produces: ['application/dicom', 'image/jpeg', 'image/png'],
      consumes: none,
    };
  const searchNames: Record<string, string> = {
    studies: 'Studies',
    series: 'Series',
    instances: 'Instances',
  };
  if (!last.startsWith(':') && searchNames[last] !== undefined) {
    const scope = ['', 'Study', 'StudySeries'][levels] ?? '';
    return {
      id: `SearchFor${scope}${searchNames[last]}`,
      produces: [DICOM_JSON, MULTIPART_XML],
      consumes: none,
    };
  }
  const frames = segments.includes('frames');
  switch (last.startsWith(':') && !frames ? 'retrieve' : last) {
    case 'retrieve':
      return { id: `Retrieve${level}`, produces: [MULTIPART_DICOM, 'application/zip'], consumes: none };
    case 'metadata':
      return { id: `Retrieve${level}Metadata`, produces: [DICOM_JSON], consumes: none };
    case 'rendered':
      return {
        id: frames ? 'RetrieveRenderedFrames' : `RetrieveRendered${level}`,
        produces: ['image/jpeg', 'image/png'],
        consumes: none,
      };
    case 'thumbnail':
      return {
        id: frames ? 'RetrieveFramesThumbnail' : `Retrieve${level}Thumbnail`,
        produces: ['image/jpeg', 'image/png'],
        consumes: none,
      };
    default:
      if (frames) return { id: 'RetrieveFrames', produces: [MULTIPART_OCTET], consumes: none };
      return {
        id: `Retrieve${level}Bulkdata`,
        produces: [MULTIPART_OCTET, 'application/octet-stream'],
        consumes: none,
      };
  }
}

/** The resource tree of the DICOMweb routes (OPTIONS and HEAD left out: they are not transactions). */
export function resourceTree(routes: readonly RegisteredRoute[]): ResourceNode {
  const root: ResourceNode = { path: '', methods: [], children: [] };
  for (const route of routes) {
    if (!route.url.startsWith(`${DICOMWEB_PREFIX}/`) || route.method === 'OPTIONS' || route.method === 'HEAD')
      continue;
    const segments = route.url
      .slice(DICOMWEB_PREFIX.length + 1)
      .split('/')
      .filter((s) => s !== '');
    if (segments.length === 0) continue;
    let node = root;
    for (const segment of segments) {
      const path = segment === '*' ? '{path}' : segment.startsWith(':') ? `{${segment.slice(1)}}` : segment;
      let child = node.children.find((c) => c.path === path);
      if (child === undefined) {
        child = { path, methods: [], children: [] };
        node.children.push(child);
      }
      node = child;
    }
    const t = transactionOf(route.method, segments);
    if (!node.methods.some((m) => m.name === route.method)) node.methods.push({ name: route.method, ...t });
  }
  return root;
}

/** The node of a concrete path below /dicom-web, with the WADL path that leads to it. */
function findNode(
  root: ResourceNode,
  segments: readonly string[],
): { node: ResourceNode; path: string } | undefined {
  let node = root;
  const path: string[] = [];
  for (const segment of segments) {
    const child =
      node.children.find((c) => c.path === segment) ??
      node.children.find((c) => c.path.startsWith('{') && c.path !== '{path}') ??
      node.children.find((c) => c.path === '{path}');
    if (child === undefined) return undefined;
    path.push(child.path);
    node = child;
    if (child.path === '{path}') break;
  }
  return { node, path: path.join('/') };
}

function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function wadlResource(node: ResourceNode, path: string, indent: string): string {
  const lines = [`${indent}<resource path="${escapeXml(path)}">`];
  for (const m of node.methods) {
    lines.push(`${indent}  <method name="${m.name}" id="${m.id}">`);
    lines.push(`${indent}    <request>`);
    if (m.produces.length > 0) {
      lines.push(
        `${indent}      <param name="Accept" style="header" default="${escapeXml(m.produces[0] ?? '')}">`,
      );
      for (const p of m.produces) lines.push(`${indent}        <option value="${escapeXml(p)}"/>`);
      lines.push(`${indent}      </param>`);
    }
    for (const c of m.consumes) lines.push(`${indent}      <representation mediaType="${escapeXml(c)}"/>`);
    lines.push(`${indent}    </request>`);
    lines.push(`${indent}    <response status="200">`);
    for (const p of m.produces) lines.push(`${indent}      <representation mediaType="${escapeXml(p)}"/>`);
    lines.push(`${indent}    </response>`);
    lines.push(`${indent}  </method>`);
  }
  for (const child of node.children) lines.push(wadlResource(child, child.path, `${indent}  `));
  lines.push(`${indent}</resource>`);
  return lines.join('\n');
}

/** The WADL document of `node` (the service root when `path` is empty). */
export function wadlDocument(base: string, node: ResourceNode, path: string): string {
  const body =
    path === ''
      ? node.children.map((c) => wadlResource(c, c.path, '    ')).join('\n')
      : wadlResource(node, path, '    ');
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<application xmlns="http://wadl.dev.java.net/2009/02">',
    `  <resources base="${escapeXml(`${base}/`)}">`,
    body,
    '  </resources>',
    '</application>',
    '',
  ].join('\n');
}

function jsonTree(node: ResourceNode, path: string): unknown {
  return {
    path,
    methods: node.methods.map((m) => ({
      name: m.name,
      id: m.id,
      produces: m.produces,
      consumes: m.consumes,
    })),
    resources: node.children.map((c) => jsonTree(c, c.path)),
  };
}

export function registerCapabilities(
  app: FastifyInstance,
  context: DicomwebContext,
  routes: () => readonly RegisteredRoute[],
): void {
  let tree: ResourceNode | undefined;
  const answer = (request: FastifyRequest, reply: FastifyReply, segments: readonly string[]) => {
    tree ??= resourceTree(routes());
    const found = segments.length === 0 ? { node: tree, path: '' } : findNode(tree, segments);
    if (found === undefined)
      throw httpError(404, 'ERR_HTTP_NOT_FOUND', `no DICOMweb resource at /${segments.join('/')}`);
    const base = serviceUrl(context, request);
    const accept = acceptOf(request.headers, undefined);
    const wadl = accept.find((r) => rangeMatches(r, WADL) || rangeMatches(r, 'application/xml'));
    const json = accept.find((r) => rangeMatches(r, 'application/json') || rangeMatches(r, DICOM_JSON));
    if (wadl !== undefined && (json === undefined || accept.indexOf(wadl) <= accept.indexOf(json)))
      return reply.type(WADL).send(wadlDocument(base, found.node, found.path));
    if (json !== undefined)
      return reply
        .type('application/json')
        .send({ base: `${base}/`, ...(jsonTree(found.node, found.path) as object) });
    throw httpError(
      406,
      'ERR_HTTP_NOT_ACCEPTABLE',
      `the Capabilities document is ${WADL} or application/json`,
    );
  };
  app.route({
    method: 'OPTIONS',
    url: '/',
    config: { operation: 'dicomweb:capabilities' },
    handler: async (request, reply) => answer(request, reply, []),
  });
  app.route({
    method: 'OPTIONS',
    url: '/*',
    config: { operation: 'dicomweb:capabilities' },
    handler: async (request, reply) => {
      const rest = (request.params as { '*'?: string })['*'] ?? '';
      return answer(
        request,
        reply,
        rest.split('/').filter((s) => s !== ''),
      );
    },
  });
}
