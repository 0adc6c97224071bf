import Foundation
import MCP
import OnebitMCP
import OnebitModel
import Testing

@Suite struct ValueConversionTests {
    @Test func aValueSurvivesTheRoundTrip() throws {
        let json = try JSONValue(parsing: #"{"a":[1,2.5,"x",null,true],"b":{"c":false,"d":-7}}"#)
        #expect(JSONValue(Value(json)) == json)
    }

    @Test func objectMembersComeBackInKeyOrder() throws {
        let value: Value = ["zeta": 1, "alpha": 2, "mid": ["y": 1, "b": 2]]
        #expect(JSONValue(value).jsonText == #"{"alpha":2,"mid":{"b":2,"y":1},"zeta":1}"#)
    }

    @Test func aDataURLStaysTheStringTheClientSent() throws {
        let value = Value.data(mimeType: "text/plain", Data("hi".utf8))
        #expect(JSONValue(value).stringValue?.hasPrefix("data:text/plain") == true)
    }
}
