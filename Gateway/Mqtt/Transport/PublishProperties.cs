using System.Buffers;

namespace OrleansIot.Gateway.Mqtt.Transport;

/// <summary>
/// Reads an MQTT 5 PUBLISH packet's properties on the wire for what the decoded packet cannot tell: a Topic Alias
/// property of 0 (a protocol error, DISCONNECT 0x94) decodes the same as no alias at all.
/// </summary>
internal static class PublishProperties
{
    private const byte TopicAlias = 0x23;

    /// <summary>True when the packet (fixed header first) carries a Topic Alias property whose value is 0.</summary>
    public static bool HasTopicAliasZero(ReadOnlySequence<byte> packet)
    {
        var reader = new SequenceReader<byte>(packet);
        if (!reader.TryRead(out var header) || (header >> 4) != 3 || !TryReadVariableInteger(ref reader, out _)
            || !TrySkipString(ref reader))
        {
            return false;
        }

        var qos = (header >> 1) & 3;
        if (qos > 0 && !(reader.Remaining >= 2 && Advance(ref reader, 2)))
        {
            return false;
        }

        if (!TryReadVariableInteger(ref reader, out var length) || length == 0)
        {
            return false;
        }

        var end = reader.Consumed + length;
        while (reader.Consumed < end && reader.TryRead(out var id))
        {
            switch (id)
            {
                case TopicAlias:
                    if (!reader.TryReadBigEndian(out short alias))
                    {
                        return false;
                    }

                    if (alias == 0)
                    {
                        return true;
                    }

                    break;
                case 0x01:   // payload format indicator
                    reader.Advance(1);
                    break;
                case 0x02:   // message expiry interval
                    reader.Advance(4);
                    break;
                case 0x03 or 0x08 or 0x09:   // content type, response topic, correlation data
                    if (!TrySkipString(ref reader))
                    {
                        return false;
                    }

                    break;
                case 0x0B:   // subscription identifier
                    if (!TryReadVariableInteger(ref reader, out _))
                    {
                        return false;
                    }

                    break;
                case 0x26:   // user property: two strings
                    if (!TrySkipString(ref reader) || !TrySkipString(ref reader))
                    {
                        return false;
                    }

                    break;
                default:
                    return false;   // not a PUBLISH property: MQTTnet's decoder refuses the packet anyway
            }
        }

        return false;
    }

    private static bool TrySkipString(ref SequenceReader<byte> reader) =>
        reader.TryReadBigEndian(out short length) && reader.Remaining >= (ushort)length && Advance(ref reader, (ushort)length);

    private static bool Advance(ref SequenceReader<byte> reader, long count)
    {
        reader.Advance(count);
        return true;
    }

    private static bool TryReadVariableInteger(ref SequenceReader<byte> reader, out int value)
    {
        value = 0;
        for (var shift = 0; shift < 28; shift += 7)
        {
            if (!reader.TryRead(out var b))
            {
                return false;
            }

            value |= (b & 0x7F) << shift;
            if ((b & 0x80) == 0)
            {
                return true;
            }
        }

        return false;
    }
}
