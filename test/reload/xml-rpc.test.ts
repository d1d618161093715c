/**
 * The XML-RPC client's encoding and decoding, against the documents Python's xmlrpc.client (what
 * supervisord answers with) writes; the calls themselves run against a real supervisord in
 * supervisor.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { decodeResponse, encodeCall, type XmlRpcError } from '../../src/reload/xml-rpc.js';

/** What xmlrpc.client.dumps((value,), methodresponse=True) writes for getProcessInfo. */
const PROCESS_INFO = `<?xml version='1.0'?>
<methodResponse>
<params>
<param>
<value><struct>
<member>
<name>name</name>
<value><string>console</string></value>
</member>
<member>
<name>pid</name>
<value><int>4242</int></value>
</member>
<member>
<name>description</name>
<value><string>pid 4242, uptime 0:00:03 &amp; &lt;more&gt; &#233;&#x4e2d;</string></value>
</member>
<member>
<name>spawnerr</name>
<value><string></string></value>
</member>
<member>
<name>padded</name>
<value><string>  two spaces  </string></value>
</member>
<member>
<name>untyped</name>
<value> bare text </value>
</member>
<member>
<name>flags</name>
<value><array><data>
<value><boolean>1</boolean></value>
<value><boolean>0</boolean></value>
<value><double>1.5</double></value>
<value><i4>-3</i4></value>
<value><nil/></value>
</data></array></value>
</member>
</struct></value>
</param>
</params>
</methodResponse>
`;

describe('XML-RPC encoding', () => {
  it('when a call has string, boolean and integer parameters, then each is typed and text is escaped', () => {
    expect(encodeCall('supervisor.stopProcess', ['a<b>&c', true, 7])).toBe(
      '<?xml version="1.0"?><methodCall><methodName>supervisor.stopProcess</methodName><params>' +
        '<param><value><string>a&lt;b&gt;&amp;c</string></value></param>' +
        '<param><value><boolean>1</boolean></value></param>' +
        '<param><value><int>7</int></value></param></params></methodCall>',
    );
  });

  it('when a parameter is not a whole number, then the call is refused before anything is sent', () => {
    expect(() => encodeCall('m', [1.5])).toThrow(TypeError);
  });
});

describe('XML-RPC decoding', () => {
  it("when supervisord answers a struct, then every member is read with its type, entities decoded and a string's spaces kept", () => {
    expect(decodeResponse(PROCESS_INFO)).toEqual({
      name: 'console',
      pid: 4242,
      description: 'pid 4242, uptime 0:00:03 & <more> é中',
      spawnerr: '',
      padded: '  two spaces  ',
      untyped: ' bare text ',
      flags: [true, false, 1.5, -3, null],
    });
  });

  it('when the answer is a fault, then it is thrown with its code and string', () => {
    const fault = `<?xml version='1.0'?>
<methodResponse>
<fault>
<value><struct>
<member>
<name>faultCode</name>
<value><int>10</int></value>
</member>
<member>
<name>faultString</name>
<value><string>BAD_NAME: nope</string></value>
</member>
</struct></value>
</fault>
</methodResponse>
`;
    let caught: XmlRpcError | undefined;
    try {
      decodeResponse(fault);
    } catch (error) {
      caught = error as XmlRpcError;
    }
    expect(caught?.faultCode).toBe(10);
    expect(caught?.faultString).toBe('BAD_NAME: nope');
  });

  it('when the body is not an XML-RPC answer, then it is refused rather than read as something', () => {
    for (const body of [
      '<html><body>401 Unauthorized</body></html>',
      '<methodResponse><params><param><value><int>x</int></value></param></params></methodResponse>',
      '<methodResponse><params><param><value><string>a</value></param></params></methodResponse>',
      '<methodResponse><params><param><value><string>a</string></value></param></params></methodResponse><extra/>',
      '<methodResponse><params><param><value><base64>AA==</base64></value></param></params></methodResponse>',
      'not xml at all <',
    ]) {
      expect(() => decodeResponse(body), body).toThrow(/not XML-RPC/);
    }
  });

  it('when a struct member is named __proto__, then it is an ordinary key', () => {
    const body =
      '<methodResponse><params><param><value><struct><member><name>__proto__</name><value><string>x</string></value></member></struct></value></param></params></methodResponse>';
    const value = decodeResponse(body) as Record<string, unknown>;
    expect(Object.keys(value)).toEqual(['__proto__']);
    expect(Object.getPrototypeOf(value)).toBeNull();
  });
});
