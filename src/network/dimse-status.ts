/**
 * DIMSE status codes (PS3.7 Annex C and the service classes of PS3.4) with their categories.
 */
export type StatusCategory = 'success' | 'warning' | 'failure' | 'cancel' | 'pending';

export const Status = {
  Success: 0x0000,
  // Warnings
  AttributeListError: 0x0107,
  AttributeValueOutOfRange: 0x0116,
  CoercionOfDataElements: 0xb000,
  SubOperationsCompleteWithFailures: 0xb000,
  ElementsDiscarded: 0xb006,
  DataSetDoesNotMatchSopClassWarning: 0xb007,
  // Failures (PS3.7 C.4)
  NoSuchAttribute: 0x0105,
  InvalidAttributeValue: 0x0106,
  ProcessingFailure: 0x0110,
  DuplicateSopInstance: 0x0111,
  NoSuchSopInstance: 0x0112,
  NoSuchEventType: 0x0113,
  NoSuchArgument: 0x0114,
  InvalidArgumentValue: 0x0115,
  InvalidObjectInstance: 0x0117,
  NoSuchSopClass: 0x0118,
  ClassInstanceConflict: 0x0119,
  MissingAttribute: 0x0120,
  MissingAttributeValue: 0x0121,
  SopClassNotSupported: 0x0122,
  NoSuchActionType: 0x0123,
  NotAuthorized: 0x0124,
  DuplicateInvocation: 0x0210,
  UnrecognizedOperation: 0x0211,
  MistypedArgument: 0x0212,
  ResourceLimitation: 0x0213,
  // Storage and Query/Retrieve (PS3.4 B.2.3, C.4)
  OutOfResources: 0xa700,
  OutOfResourcesNumberOfMatches: 0xa701,
  OutOfResourcesSubOperations: 0xa702,
  MoveDestinationUnknown: 0xa801,
  IdentifierDoesNotMatchSopClass: 0xa900,
  DataSetDoesNotMatchSopClass: 0xa900,
  CannotUnderstand: 0xc000,
  UnableToProcess: 0xc001,
  Cancel: 0xfe00,
  Pending: 0xff00,
  PendingWarning: 0xff01,
} as const;

/** The category of a status (PS3.7 C.1-C.5; the 0xB... range and some 01xx codes are warnings). */
export function statusCategory(status: number): StatusCategory {
  if (status === 0x0000) return 'success';
  if (status === 0xfe00) return 'cancel';
  if (status === 0xff00 || status === 0xff01) return 'pending';
  if (status === 0x0001 || status === 0x0107 || status === 0x0116 || (status >= 0xb000 && status <= 0xbfff))
    return 'warning';
  return 'failure';
}

const MEANINGS: ReadonlyMap<number, string> = new Map([
  [0x0000, 'Success'],
  [0x0001, 'Warning: requested optional attributes are not supported'],
  [0x0105, 'No such attribute'],
  [0x0106, 'Invalid attribute value'],
  [0x0107, 'Attribute list error'],
  [0x0110, 'Processing failure'],
  [0x0111, 'Duplicate SOP Instance'],
  [0x0112, 'No such SOP Instance'],
  [0x0113, 'No such event type'],
  [0x0114, 'No such argument'],
  [0x0115, 'Invalid argument value'],
  [0x0116, 'Attribute value out of range'],
  [0x0117, 'Invalid object instance'],
  [0x0118, 'No such SOP Class'],
  [0x0119, 'Class-instance conflict'],
  [0x0120, 'Missing attribute'],
  [0x0121, 'Missing attribute value'],
  [0x0122, 'SOP Class not supported'],
  [0x0123, 'No such action type'],
  [0x0124, 'Refused: not authorized'],
  [0x0210, 'Duplicate invocation'],
  [0x0211, 'Unrecognized operation'],
  [0x0212, 'Mistyped argument'],
  [0x0213, 'Resource limitation'],
  [0xa700, 'Refused: out of resources'],
  [0xa701, 'Refused: out of resources, unable to calculate number of matches'],
  [0xa702, 'Refused: out of resources, unable to perform sub-operations'],
  [0xa801, 'Refused: move destination unknown'],
  [0xa900, 'Error: data set or identifier does not match SOP Class'],
  [0xb000, 'Warning: coercion of data elements, or sub-operations complete with one or more failures'],
  [0xb006, 'Warning: elements discarded'],
  [0xb007, 'Warning: data set does not match SOP Class'],
  [0xc000, 'Error: cannot understand'],
  [0xc001, 'Error: unable to process'],
  [0xfe00, 'Cancel'],
  [0xff00, 'Pending'],
  [0xff01, 'Pending: optional keys not supported'],
]);

/** "0xA700 (Refused: out of resources)" for messages and logs. */
export function describeStatus(status: number): string {
  const hex = `0x${status.toString(16).toUpperCase().padStart(4, '0')}`;
  let meaning = MEANINGS.get(status);
  if (!meaning) {
    if (status >= 0xa700 && status <= 0xa7ff) meaning = 'Refused: out of resources';
    else if (status >= 0xa900 && status <= 0xa9ff) meaning = 'Error: data set does not match SOP Class';
    else if (status >= 0xc000 && status <= 0xcfff) meaning = 'Error: cannot understand';
    else meaning = statusCategory(status);
  }
  return `${hex} (${meaning})`;
}
