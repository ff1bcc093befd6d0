package dev.driftwise.v1;

import static io.grpc.MethodDescriptor.generateFullMethodName;

/**
 * <pre>
 * IngestService takes in the catalogue and what users do.
 * </pre>
 */
@javax.annotation.Generated(
    value = "by gRPC proto compiler",
    comments = "Source: driftwise/v1/ingest_service.proto")
@io.grpc.stub.annotations.GrpcGenerated
public final class IngestServiceGrpc {

  private IngestServiceGrpc() {}

  public static final String SERVICE_NAME = "driftwise.v1.IngestService";

  // Static method descriptors that strictly reflect the proto.
  private static volatile io.grpc.MethodDescriptor<dev.driftwise.v1.UpsertItemsRequest,
      dev.driftwise.v1.UpsertItemsResponse> getUpsertItemsMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "UpsertItems",
      requestType = dev.driftwise.v1.UpsertItemsRequest.class,
      responseType = dev.driftwise.v1.UpsertItemsResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.driftwise.v1.UpsertItemsRequest,
      dev.driftwise.v1.UpsertItemsResponse> getUpsertItemsMethod() {
    io.grpc.MethodDescriptor<dev.driftwise.v1.UpsertItemsRequest, dev.driftwise.v1.UpsertItemsResponse> getUpsertItemsMethod;
    if ((getUpsertItemsMethod = IngestServiceGrpc.getUpsertItemsMethod) == null) {
      synchronized (IngestServiceGrpc.class) {
        if ((getUpsertItemsMethod = IngestServiceGrpc.getUpsertItemsMethod) == null) {
          IngestServiceGrpc.getUpsertItemsMethod = getUpsertItemsMethod =
              io.grpc.MethodDescriptor.<dev.driftwise.v1.UpsertItemsRequest, dev.driftwise.v1.UpsertItemsResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "UpsertItems"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.driftwise.v1.UpsertItemsRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.driftwise.v1.UpsertItemsResponse.getDefaultInstance()))
              .setSchemaDescriptor(new IngestServiceMethodDescriptorSupplier("UpsertItems"))
              .build();
        }
      }
    }
    return getUpsertItemsMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.driftwise.v1.DeleteItemsRequest,
      dev.driftwise.v1.DeleteItemsResponse> getDeleteItemsMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "DeleteItems",
      requestType = dev.driftwise.v1.DeleteItemsRequest.class,
      responseType = dev.driftwise.v1.DeleteItemsResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.driftwise.v1.DeleteItemsRequest,
      dev.driftwise.v1.DeleteItemsResponse> getDeleteItemsMethod() {
    io.grpc.MethodDescriptor<dev.driftwise.v1.DeleteItemsRequest, dev.driftwise.v1.DeleteItemsResponse> getDeleteItemsMethod;
    if ((getDeleteItemsMethod = IngestServiceGrpc.getDeleteItemsMethod) == null) {
      synchronized (IngestServiceGrpc.class) {
        if ((getDeleteItemsMethod = IngestServiceGrpc.getDeleteItemsMethod) == null) {
          IngestServiceGrpc.getDeleteItemsMethod = getDeleteItemsMethod =
              io.grpc.MethodDescriptor.<dev.driftwise.v1.DeleteItemsRequest, dev.driftwise.v1.DeleteItemsResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "DeleteItems"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.driftwise.v1.DeleteItemsRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.driftwise.v1.DeleteItemsResponse.getDefaultInstance()))
              .setSchemaDescriptor(new IngestServiceMethodDescriptorSupplier("DeleteItems"))
              .build();
        }
      }
    }
    return getDeleteItemsMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.driftwise.v1.IngestEventsRequest,
      dev.driftwise.v1.IngestEventsResponse> getIngestEventsMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "IngestEvents",
      requestType = dev.driftwise.v1.IngestEventsRequest.class,
      responseType = dev.driftwise.v1.IngestEventsResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.driftwise.v1.IngestEventsRequest,
      dev.driftwise.v1.IngestEventsResponse> getIngestEventsMethod() {
    io.grpc.MethodDescriptor<dev.driftwise.v1.IngestEventsRequest, dev.driftwise.v1.IngestEventsResponse> getIngestEventsMethod;
    if ((getIngestEventsMethod = IngestServiceGrpc.getIngestEventsMethod) == null) {
      synchronized (IngestServiceGrpc.class) {
        if ((getIngestEventsMethod = IngestServiceGrpc.getIngestEventsMethod) == null) {
          IngestServiceGrpc.getIngestEventsMethod = getIngestEventsMethod =
              io.grpc.MethodDescriptor.<dev.driftwise.v1.IngestEventsRequest, dev.driftwise.v1.IngestEventsResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "IngestEvents"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.driftwise.v1.IngestEventsRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.driftwise.v1.IngestEventsResponse.getDefaultInstance()))
              .setSchemaDescriptor(new IngestServiceMethodDescriptorSupplier("IngestEvents"))
              .build();
        }
      }
    }
    return getIngestEventsMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.driftwise.v1.StreamEventsRequest,
      dev.driftwise.v1.StreamEventsResponse> getStreamEventsMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "StreamEvents",
      requestType = dev.driftwise.v1.StreamEventsRequest.class,
      responseType = dev.driftwise.v1.StreamEventsResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.BIDI_STREAMING)
  public static io.grpc.MethodDescriptor<dev.driftwise.v1.StreamEventsRequest,
      dev.driftwise.v1.StreamEventsResponse> getStreamEventsMethod() {
    io.grpc.MethodDescriptor<dev.driftwise.v1.StreamEventsRequest, dev.driftwise.v1.StreamEventsResponse> getStreamEventsMethod;
    if ((getStreamEventsMethod = IngestServiceGrpc.getStreamEventsMethod) == null) {
      synchronized (IngestServiceGrpc.class) {
        if ((getStreamEventsMethod = IngestServiceGrpc.getStreamEventsMethod) == null) {
          IngestServiceGrpc.getStreamEventsMethod = getStreamEventsMethod =
              io.grpc.MethodDescriptor.<dev.driftwise.v1.StreamEventsRequest, dev.driftwise.v1.StreamEventsResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.BIDI_STREAMING)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "StreamEvents"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.driftwise.v1.StreamEventsRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.driftwise.v1.StreamEventsResponse.getDefaultInstance()))
              .setSchemaDescriptor(new IngestServiceMethodDescriptorSupplier("StreamEvents"))
              .build();
        }
      }
    }
    return getStreamEventsMethod;
  }

  /**
   * Creates a new async stub that supports all call types for the service
   */
  public static IngestServiceStub newStub(io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<IngestServiceStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<IngestServiceStub>() {
        @java.lang.Override
        public IngestServiceStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new IngestServiceStub(channel, callOptions);
        }
      };
    return IngestServiceStub.newStub(factory, channel);
  }

  /**
   * Creates a new blocking-style stub that supports unary and streaming output calls on the service
   */
  public static IngestServiceBlockingStub newBlockingStub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<IngestServiceBlockingStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<IngestServiceBlockingStub>() {
        @java.lang.Override
        public IngestServiceBlockingStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new IngestServiceBlockingStub(channel, callOptions);
        }
      };
    return IngestServiceBlockingStub.newStub(factory, channel);
  }

  /**
   * Creates a new ListenableFuture-style stub that supports unary calls on the service
   */
  public static IngestServiceFutureStub newFutureStub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<IngestServiceFutureStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<IngestServiceFutureStub>() {
        @java.lang.Override
        public IngestServiceFutureStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new IngestServiceFutureStub(channel, callOptions);
        }
      };
    return IngestServiceFutureStub.newStub(factory, channel);
  }

  /**
   * <pre>
   * IngestService takes in the catalogue and what users do.
   * </pre>
   */
  public static abstract class IngestServiceImplBase implements io.grpc.BindableService {

    /**
     * <pre>
     * Inserts or replaces items; each item's text is encoded once and it is recommendable at once.
     * </pre>
     */
    public void upsertItems(dev.driftwise.v1.UpsertItemsRequest request,
        io.grpc.stub.StreamObserver<dev.driftwise.v1.UpsertItemsResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getUpsertItemsMethod(), responseObserver);
    }

    /**
     * <pre>
     * Deletes items from the catalogue; unknown ids are ignored.
     * </pre>
     */
    public void deleteItems(dev.driftwise.v1.DeleteItemsRequest request,
        io.grpc.stub.StreamObserver<dev.driftwise.v1.DeleteItemsResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getDeleteItemsMethod(), responseObserver);
    }

    /**
     * <pre>
     * Records a batch of events and updates the users' profiles. The batch is validated whole:
     * one invalid event rejects the batch with INVALID_ARGUMENT and nothing is stored.
     * </pre>
     */
    public void ingestEvents(dev.driftwise.v1.IngestEventsRequest request,
        io.grpc.stub.StreamObserver<dev.driftwise.v1.IngestEventsResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getIngestEventsMethod(), responseObserver);
    }

    /**
     * <pre>
     * Records events one message at a time; each gets an acknowledgement or its own error, in order.
     * </pre>
     */
    public io.grpc.stub.StreamObserver<dev.driftwise.v1.StreamEventsRequest> streamEvents(
        io.grpc.stub.StreamObserver<dev.driftwise.v1.StreamEventsResponse> responseObserver) {
      return io.grpc.stub.ServerCalls.asyncUnimplementedStreamingCall(getStreamEventsMethod(), responseObserver);
    }

    @java.lang.Override public final io.grpc.ServerServiceDefinition bindService() {
      return io.grpc.ServerServiceDefinition.builder(getServiceDescriptor())
          .addMethod(
            getUpsertItemsMethod(),
            io.grpc.stub.ServerCalls.asyncUnaryCall(
              new MethodHandlers<
                dev.driftwise.v1.UpsertItemsRequest,
                dev.driftwise.v1.UpsertItemsResponse>(
                  this, METHODID_UPSERT_ITEMS)))
          .addMethod(
            getDeleteItemsMethod(),
            io.grpc.stub.ServerCalls.asyncUnaryCall(
              new MethodHandlers<
                dev.driftwise.v1.DeleteItemsRequest,
                dev.driftwise.v1.DeleteItemsResponse>(
                  this, METHODID_DELETE_ITEMS)))
          .addMethod(
            getIngestEventsMethod(),
            io.grpc.stub.ServerCalls.asyncUnaryCall(
              new MethodHandlers<
                dev.driftwise.v1.IngestEventsRequest,
                dev.driftwise.v1.IngestEventsResponse>(
                  this, METHODID_INGEST_EVENTS)))
          .addMethod(
            getStreamEventsMethod(),
            io.grpc.stub.ServerCalls.asyncBidiStreamingCall(
              new MethodHandlers<
                dev.driftwise.v1.StreamEventsRequest,
                dev.driftwise.v1.StreamEventsResponse>(
                  this, METHODID_STREAM_EVENTS)))
          .build();
    }
  }

  /**
   * <pre>
   * IngestService takes in the catalogue and what users do.
   * </pre>
   */
  public static final class IngestServiceStub extends io.grpc.stub.AbstractAsyncStub<IngestServiceStub> {
    private IngestServiceStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected IngestServiceStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new IngestServiceStub(channel, callOptions);
    }

    /**
     * <pre>
     * Inserts or replaces items; each item's text is encoded once and it is recommendable at once.
     * </pre>
     */
    public void upsertItems(dev.driftwise.v1.UpsertItemsRequest request,
        io.grpc.stub.StreamObserver<dev.driftwise.v1.UpsertItemsResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getUpsertItemsMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Deletes items from the catalogue; unknown ids are ignored.
     * </pre>
     */
    public void deleteItems(dev.driftwise.v1.DeleteItemsRequest request,
        io.grpc.stub.StreamObserver<dev.driftwise.v1.DeleteItemsResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getDeleteItemsMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Records a batch of events and updates the users' profiles. The batch is validated whole:
     * one invalid event rejects the batch with INVALID_ARGUMENT and nothing is stored.
     * </pre>
     */
    public void ingestEvents(dev.driftwise.v1.IngestEventsRequest request,
        io.grpc.stub.StreamObserver<dev.driftwise.v1.IngestEventsResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getIngestEventsMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Records events one message at a time; each gets an acknowledgement or its own error, in order.
     * </pre>
     */
    public io.grpc.stub.StreamObserver<dev.driftwise.v1.StreamEventsRequest> streamEvents(
        io.grpc.stub.StreamObserver<dev.driftwise.v1.StreamEventsResponse> responseObserver) {
      return io.grpc.stub.ClientCalls.asyncBidiStreamingCall(
          getChannel().newCall(getStreamEventsMethod(), getCallOptions()), responseObserver);
    }
  }

  /**
   * <pre>
   * IngestService takes in the catalogue and what users do.
   * </pre>
   */
  public static final class IngestServiceBlockingStub extends io.grpc.stub.AbstractBlockingStub<IngestServiceBlockingStub> {
    private IngestServiceBlockingStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected IngestServiceBlockingStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new IngestServiceBlockingStub(channel, callOptions);
    }

    /**
     * <pre>
     * Inserts or replaces items; each item's text is encoded once and it is recommendable at once.
     * </pre>
     */
    public dev.driftwise.v1.UpsertItemsResponse upsertItems(dev.driftwise.v1.UpsertItemsRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getUpsertItemsMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Deletes items from the catalogue; unknown ids are ignored.
     * </pre>
     */
    public dev.driftwise.v1.DeleteItemsResponse deleteItems(dev.driftwise.v1.DeleteItemsRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getDeleteItemsMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Records a batch of events and updates the users' profiles. The batch is validated whole:
     * one invalid event rejects the batch with INVALID_ARGUMENT and nothing is stored.
     * </pre>
     */
    public dev.driftwise.v1.IngestEventsResponse ingestEvents(dev.driftwise.v1.IngestEventsRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getIngestEventsMethod(), getCallOptions(), request);
    }
  }

  /**
   * <pre>
   * IngestService takes in the catalogue and what users do.
   * </pre>
   */
  public static final class IngestServiceFutureStub extends io.grpc.stub.AbstractFutureStub<IngestServiceFutureStub> {
    private IngestServiceFutureStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected IngestServiceFutureStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new IngestServiceFutureStub(channel, callOptions);
    }

    /**
     * <pre>
     * Inserts or replaces items; each item's text is encoded once and it is recommendable at once.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.driftwise.v1.UpsertItemsResponse> upsertItems(
        dev.driftwise.v1.UpsertItemsRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getUpsertItemsMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Deletes items from the catalogue; unknown ids are ignored.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.driftwise.v1.DeleteItemsResponse> deleteItems(
        dev.driftwise.v1.DeleteItemsRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getDeleteItemsMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Records a batch of events and updates the users' profiles. The batch is validated whole:
     * one invalid event rejects the batch with INVALID_ARGUMENT and nothing is stored.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.driftwise.v1.IngestEventsResponse> ingestEvents(
        dev.driftwise.v1.IngestEventsRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getIngestEventsMethod(), getCallOptions()), request);
    }
  }

  private static final int METHODID_UPSERT_ITEMS = 0;
  private static final int METHODID_DELETE_ITEMS = 1;
  private static final int METHODID_INGEST_EVENTS = 2;
  private static final int METHODID_STREAM_EVENTS = 3;

  private static final class MethodHandlers<Req, Resp> implements
      io.grpc.stub.ServerCalls.UnaryMethod<Req, Resp>,
      io.grpc.stub.ServerCalls.ServerStreamingMethod<Req, Resp>,
      io.grpc.stub.ServerCalls.ClientStreamingMethod<Req, Resp>,
      io.grpc.stub.ServerCalls.BidiStreamingMethod<Req, Resp> {
    private final IngestServiceImplBase serviceImpl;
    private final int methodId;

    MethodHandlers(IngestServiceImplBase serviceImpl, int methodId) {
      this.serviceImpl = serviceImpl;
      this.methodId = methodId;
    }

    @java.lang.Override
    @java.lang.SuppressWarnings("unchecked")
    public void invoke(Req request, io.grpc.stub.StreamObserver<Resp> responseObserver) {
      switch (methodId) {
        case METHODID_UPSERT_ITEMS:
          serviceImpl.upsertItems((dev.driftwise.v1.UpsertItemsRequest) request,
              (io.grpc.stub.StreamObserver<dev.driftwise.v1.UpsertItemsResponse>) responseObserver);
          break;
        case METHODID_DELETE_ITEMS:
          serviceImpl.deleteItems((dev.driftwise.v1.DeleteItemsRequest) request,
              (io.grpc.stub.StreamObserver<dev.driftwise.v1.DeleteItemsResponse>) responseObserver);
          break;
        case METHODID_INGEST_EVENTS:
          serviceImpl.ingestEvents((dev.driftwise.v1.IngestEventsRequest) request,
              (io.grpc.stub.StreamObserver<dev.driftwise.v1.IngestEventsResponse>) responseObserver);
          break;
        default:
          throw new AssertionError();
      }
    }

    @java.lang.Override
    @java.lang.SuppressWarnings("unchecked")
    public io.grpc.stub.StreamObserver<Req> invoke(
        io.grpc.stub.StreamObserver<Resp> responseObserver) {
      switch (methodId) {
        case METHODID_STREAM_EVENTS:
          return (io.grpc.stub.StreamObserver<Req>) serviceImpl.streamEvents(
              (io.grpc.stub.StreamObserver<dev.driftwise.v1.StreamEventsResponse>) responseObserver);
        default:
          throw new AssertionError();
      }
    }
  }

  private static abstract class IngestServiceBaseDescriptorSupplier
      implements io.grpc.protobuf.ProtoFileDescriptorSupplier, io.grpc.protobuf.ProtoServiceDescriptorSupplier {
    IngestServiceBaseDescriptorSupplier() {}

    @java.lang.Override
    public com.google.protobuf.Descriptors.FileDescriptor getFileDescriptor() {
      return dev.driftwise.v1.IngestServiceProto.getDescriptor();
    }

    @java.lang.Override
    public com.google.protobuf.Descriptors.ServiceDescriptor getServiceDescriptor() {
      return getFileDescriptor().findServiceByName("IngestService");
    }
  }

  private static final class IngestServiceFileDescriptorSupplier
      extends IngestServiceBaseDescriptorSupplier {
    IngestServiceFileDescriptorSupplier() {}
  }

  private static final class IngestServiceMethodDescriptorSupplier
      extends IngestServiceBaseDescriptorSupplier
      implements io.grpc.protobuf.ProtoMethodDescriptorSupplier {
    private final String methodName;

    IngestServiceMethodDescriptorSupplier(String methodName) {
      this.methodName = methodName;
    }

    @java.lang.Override
    public com.google.protobuf.Descriptors.MethodDescriptor getMethodDescriptor() {
      return getServiceDescriptor().findMethodByName(methodName);
    }
  }

  private static volatile io.grpc.ServiceDescriptor serviceDescriptor;

  public static io.grpc.ServiceDescriptor getServiceDescriptor() {
    io.grpc.ServiceDescriptor result = serviceDescriptor;
    if (result == null) {
      synchronized (IngestServiceGrpc.class) {
        result = serviceDescriptor;
        if (result == null) {
          serviceDescriptor = result = io.grpc.ServiceDescriptor.newBuilder(SERVICE_NAME)
              .setSchemaDescriptor(new IngestServiceFileDescriptorSupplier())
              .addMethod(getUpsertItemsMethod())
              .addMethod(getDeleteItemsMethod())
              .addMethod(getIngestEventsMethod())
              .addMethod(getStreamEventsMethod())
              .build();
        }
      }
    }
    return result;
  }
}
