import {
  CommitmentPolicy,
  CommitmentPolicySuites,
  getDecryptionHelper,
  needs,
  NodeAlgorithmSuite,
  SignaturePolicy,
  SignaturePolicySuites,
  type GetDecipher,
  type NodeMaterialsManager,
} from '@aws-crypto/client-node';
import type { AlgorithmSuite } from '@aws-crypto/material-management';
import {
  aadFactory,
  decodeBodyHeader,
  deserializeFactory,
  deserializeSignature,
  serializeMessageHeaderAuth,
  type HeaderInfo,
} from '@aws-crypto/serialize';

const deserialize = deserializeFactory(
  (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString(),
  NodeAlgorithmSuite,
);
const aad = aadFactory((text: string) => Buffer.from(text, 'utf8'));

/** RDS writes DAS messages with the non-committing suites: decrypting them must be allowed. */
const COMMITMENT_POLICY = CommitmentPolicy.REQUIRE_ENCRYPT_ALLOW_DECRYPT;
/** Signed and unsigned suites are both accepted (as `buildClient`'s decrypt does by default). */
const SIGNATURE_POLICY = SignaturePolicy.ALLOW_ENCRYPT_ALLOW_DECRYPT;

const view = (bytes: Uint8Array): Buffer =>
  Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

/**
 * Decrypts one whole AWS Encryption SDK message held in memory, as the SDK's own
 * `decrypt` does, without its Node stream pipeline.
 *
 * Why hand-written: a DAS record is one small message already in memory, and the SDK's
 * `decrypt` (Node) only exists as a four-stage stream (header parser, verifier,
 * decipher, pass-through; `setImmediate` between frames), whose set-up was the largest
 * per-record cost of the decrypt Lambda after the signature itself (BENCHMARKS 6).
 * Every step here is the SDK's own code, called in the order and with the checks of
 * `@aws-crypto/decrypt-node` 5.0.2 (parse_header_stream, verify_stream,
 * decipher_stream): the header parser, the commitment and signature policy checks on
 * the header's and the material's suite, the materials manager (keyring, encryption
 * context), the header authentication tag, the body frame parser with its sequence
 * check, each frame's AAD and GCM tag, and the signature over the header and the whole
 * body. Stricter than the SDK in one point: bytes after an unsigned message's last
 * frame are refused (the SDK ignores them). No plaintext is returned unless every
 * check passed. A differential test runs this and the SDK on the same messages, every
 * one-byte change and every truncation of them.
 *
 * @throws Error naming the failed check (the SDK's own messages where it is the SDK's check).
 *
 * @example
 * const plaintext = await decryptMessage(new NodeDefaultCryptographicMaterialsManager(keyring), message);
 */
export async function decryptMessage(cmm: NodeMaterialsManager, message: Buffer): Promise<Buffer> {
  const headerInfo = deserialize.deserializeMessageHeader(message, { maxEncryptedDataKeys: false });
  needs(headerInfo, 'Incomplete Header');
  const { messageHeader, algorithmSuite, rawHeader, headerAuth } = headerInfo;
  const { messageId, encryptionContext, encryptedDataKeys } = messageHeader;
  const messageIdHex = view(messageId).toString('hex');
  checkPolicies(algorithmSuite, messageIdHex);
  const material = await cmm.decryptMaterials({
    suite: new NodeAlgorithmSuite(algorithmSuite.id),
    encryptionContext,
    encryptedDataKeys,
  });
  checkPolicies(material.suite, messageIdHex);
  const { getDecipherInfo, getVerify, dispose } = getDecryptionHelper(material);
  try {
    const getDecipher = getDecipherInfo(
      messageId,
      // Version 2 headers carry the key commitment; version 1 has none (as the SDK passes it).
      'suiteData' in messageHeader ? messageHeader.suiteData : undefined,
    );
    const { headerIv, headerAuthTag, headerAuthLength } = headerAuth;
    const headerCheck = getDecipher(headerIv);
    headerCheck.setAAD(view(rawHeader));
    headerCheck.setAuthTag(view(headerAuthTag));
    headerCheck.update(Buffer.alloc(0));
    headerCheck.final(); // throws when the header was changed
    const verify = getVerify?.();
    verify?.update(view(rawHeader));
    verify?.update(view(serializeMessageHeaderAuth({ headerIv, headerAuthTag, messageHeader })));
    const body = decryptBody(message, headerInfo, rawHeader.byteLength + headerAuthLength, {
      getDecipher,
      update: (bytes) => verify?.update(bytes),
    });
    const footer = message.subarray(body.end);
    if (verify) {
      const signature = deserializeSignature(footer);
      needs(verify.awsCryptoVerify(view(signature)), 'Invalid Signature');
    } else {
      needs(footer.length === 0, 'Unexpected bytes after the message body');
    }
    return Buffer.concat(body.clear);
  } finally {
    dispose();
  }
}

function checkPolicies(suite: AlgorithmSuite, messageIdHex: string): void {
  CommitmentPolicySuites.isDecryptEnabled(COMMITMENT_POLICY, suite, messageIdHex);
  SignaturePolicySuites.isDecryptEnabled(SIGNATURE_POLICY, suite, messageIdHex);
}

/** The body's frames, in order: each frame's bytes go to the signature, its GCM tag is checked. */
function decryptBody(
  message: Buffer,
  headerInfo: HeaderInfo,
  start: number,
  frames: {
    getDecipher: GetDecipher;
    update: (bytes: Buffer) => void;
  },
): { clear: Buffer[]; end: number } {
  const { messageId, contentType } = headerInfo.messageHeader;
  const clear: Buffer[] = [];
  let readPos = start;
  for (let expected = 1; ; expected++) {
    const frame = decodeBodyHeader(message, headerInfo, readPos);
    needs(frame, 'Incomplete message');
    needs(frame.sequenceNumber === expected, 'Encrypted body sequence out of order.');
    const contentEnd = frame.readPos + frame.contentLength;
    const tagEnd = contentEnd + frame.tagLength / 8;
    needs(tagEnd <= message.length, 'Incomplete message');
    frames.update(message.subarray(readPos, tagEnd));
    const contentString = aad.messageAADContentString({
      contentType,
      isFinalFrame: frame.isFinalFrame,
    });
    const messageAAD = aad.messageAAD(
      messageId,
      contentString,
      frame.sequenceNumber,
      frame.contentLength,
    );
    const decipher = frames.getDecipher(frame.iv);
    decipher.setAAD(view(messageAAD));
    decipher.setAuthTag(message.subarray(contentEnd, tagEnd));
    clear.push(decipher.update(message.subarray(frame.readPos, contentEnd)));
    clear.push(decipher.final()); // throws when the frame was changed
    readPos = tagEnd;
    if (frame.isFinalFrame) return { clear, end: readPos };
  }
}
